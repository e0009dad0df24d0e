"""Repast: a fast, Feast-compatible feature store.

A Feast feature repo runs after changing `from feast import ...` to `from repast import ...`.
"""

from __future__ import annotations

from repast.aggregation import Aggregation
from repast.batch_feature_view import BatchFeatureView
from repast.config import RepoConfig
from repast.data_format import AvroFormat, JsonFormat, ParquetFormat, ProtoFormat
from repast.data_source import (
    DataSource,
    FileSource,
    KafkaSource,
    KinesisSource,
    PushMode,
    PushSource,
    RequestSource,
)
from repast.entity import Entity
from repast.feature_logging import LoggingConfig
from repast.feature_service import FeatureService
from repast.feature_store import FeatureStore
from repast.feature_view import FeatureView
from repast.field import Field
from repast.label_view import ConflictPolicy, LabelView
from repast.on_demand_feature_view import OnDemandFeatureView, on_demand_feature_view
from repast.online_response import OnlineResponse
from repast.project import Project
from repast.projection import FeatureViewProjection
from repast.spark_source import SparkSource
from repast.stream_feature_view import StreamFeatureView, stream_feature_view
from repast.value_type import ValueType

__all__ = [
    "Aggregation",
    "AvroFormat",
    "BatchFeatureView",
    "ConflictPolicy",
    "DataSource",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "JsonFormat",
    "KafkaSource",
    "KinesisSource",
    "LabelView",
    "LoggingConfig",
    "OnDemandFeatureView",
    "OnlineResponse",
    "ParquetFormat",
    "Project",
    "ProtoFormat",
    "PushMode",
    "PushSource",
    "RepoConfig",
    "RequestSource",
    "SparkSource",
    "StreamFeatureView",
    "ValueType",
    "on_demand_feature_view",
    "stream_feature_view",
]
