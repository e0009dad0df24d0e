"""Repast on Apache Spark (`repast[spark]`): the `spark` offline store's retrieval job
(`retrieval`), the `spark` batch engine (`materialize`), offline writes to Spark sources
(`write`), and the one SparkSession they share (`session`).

Nothing here is imported unless a store is configured with `type: spark`; the rest of Repast
never needs pyspark.
"""
