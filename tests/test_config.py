from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from repast.config import (
    FeatureServerAuthConfig,
    RedisOnlineStoreConfig,
    RegistryConfig,
    RepoConfig,
    SqliteOnlineStoreConfig,
    is_uri,
    load_repo_config,
)
from repast.errors import ConfigError


def write_yaml(repo: Path, text: str, name: str = "feature_store.yaml") -> Path:
    path = repo / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(repo: Path, text: str) -> RepoConfig:
    write_yaml(repo, text)
    return load_repo_config(repo)


def load_error(repo: Path, text: str) -> str:
    write_yaml(repo, text)
    with pytest.raises(ConfigError) as info:
        load_repo_config(repo)
    return str(info.value)


def test_minimal_file_gets_feast_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "project: my_project\nregistry: data/registry.db\n")
    assert config.project == "my_project"
    assert config.provider == "local"
    assert config.registry == RegistryConfig(path="data/registry.db")
    assert config.registry.registry_type == "file"
    assert config.registry.cache_ttl_seconds == 600
    assert config.registry.cache_mode == "sync"
    assert config.registry.s3_additional_kwargs is None
    assert config.registry.enable_online_feature_view_versioning is False
    assert config.registry.s3_endpoint_override is None
    assert config.online_store == SqliteOnlineStoreConfig(type="sqlite", path="data/online.db")
    assert config.offline_store.type == "file"
    assert config.batch_engine.type == "local"
    assert config.entity_key_serialization_version == 3
    assert config.coerce_tz_aware is True
    assert config.materialization.pull_latest_features is False
    assert config.materialization.online_write_batch_size is None
    server = config.feature_server
    assert server.type == "local"
    assert server.metrics.enabled is False
    assert server.offline_push_batching_enabled is False
    assert server.offline_push_batching_batch_size is None
    assert server.offline_push_batching_batch_interval_seconds is None
    assert server.auth is None
    assert server.max_body_bytes > 0
    assert server.max_entities_per_request > 0
    assert config.auth.type == "no_auth"
    assert config.repo_path == tmp_path


def test_feast_init_template_loads_unchanged(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        project: my_project
        # By default, the registry is a file (but can be turned into a more scalable SQL).
        registry: data/registry.db
        # The provider primarily specifies default offline / online stores & storing the registry
        provider: local
        online_store:
            type: sqlite
            path: data/online_store.db
        entity_key_serialization_version: 3
        # By default, no_auth for authentication and authorization.
        auth:
            type: no_auth
        """,
    )
    assert config.online_store_path == tmp_path / "data" / "online_store.db"
    assert config.registry_path == str(tmp_path / "data" / "registry.db")


def test_every_option(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        project: Proj-1_x
        provider: aws
        registry:
          registry_type: file
          path: s3://bucket/registry.json
          cache_ttl_seconds: 0
          cache_mode: thread
          s3_additional_kwargs: {ServerSideEncryption: AES256}
          enable_online_feature_view_versioning: true
          s3_endpoint_override: http://127.0.0.1:9000
        online_store:
          type: redis
          redis_type: redis_cluster
          connection_string: "redis1:6379,redis2:6379,ssl=true"
          sentinel_master: primary
          key_ttl_seconds: 604800
          full_scan_for_deletion: false
          skip_dedup: true
          layout: feast
        offline_store:
          type: duckdb
        batch_engine:
          type: local
        entity_key_serialization_version: 3
        coerce_tz_aware: false
        materialization:
          pull_latest_features: true
          online_write_batch_size: 500
        feature_server:
          type: local
          enabled: true
          transformation_service_endpoint: "localhost:7000"
          metrics: {enabled: true}
          offline_push_batching_enabled: true
          offline_push_batching_batch_size: 100
          offline_push_batching_batch_interval_seconds: 5
          auth: {type: bearer, tokens: [t1, t2]}
          max_body_bytes: 1024
          max_entities_per_request: 10
          request_timeout_seconds: 2.5
        auth:
          type: no_auth
        """,
    )
    assert config.project == "Proj-1_x"
    assert config.provider == "aws"
    reg = config.registry
    assert reg.path == "s3://bucket/registry.json"
    assert config.registry_path == "s3://bucket/registry.json"
    assert (reg.cache_ttl_seconds, reg.cache_mode) == (0, "thread")
    assert reg.s3_additional_kwargs == {"ServerSideEncryption": "AES256"}
    assert reg.enable_online_feature_view_versioning is True
    assert reg.s3_endpoint_override == "http://127.0.0.1:9000"
    assert config.online_store == RedisOnlineStoreConfig(
        redis_type="redis_cluster",
        connection_string="redis1:6379,redis2:6379,ssl=true",
        sentinel_master="primary",
        key_ttl_seconds=604800,
        full_scan_for_deletion=False,
        skip_dedup=True,
        layout="feast",
    )
    assert config.offline_store.type == "file"
    assert config.coerce_tz_aware is False
    assert config.materialization.pull_latest_features is True
    assert config.materialization.online_write_batch_size == 500
    server = config.feature_server
    assert server.enabled is True
    assert server.transformation_service_endpoint == "localhost:7000"
    assert server.metrics.enabled is True
    assert server.offline_push_batching_enabled is True
    assert server.offline_push_batching_batch_size == 100
    assert server.offline_push_batching_batch_interval_seconds == 5
    assert server.auth == FeatureServerAuthConfig(tokens=["t1", "t2"])
    assert "t1" not in repr(server.auth)
    assert (server.max_body_bytes, server.max_entities_per_request) == (1024, 10)
    assert server.request_timeout_seconds == 2.5


def test_redis_defaults() -> None:
    redis = RedisOnlineStoreConfig()
    assert redis.redis_type == "redis"
    assert redis.connection_string == "localhost:6379"
    assert redis.sentinel_master == "mymaster"
    assert redis.key_ttl_seconds is None
    assert redis.full_scan_for_deletion is True
    assert redis.skip_dedup is False
    assert redis.layout == "packed"


@pytest.mark.parametrize("alias", ["file", "dask", "duckdb"])
def test_offline_store_aliases(tmp_path: Path, alias: str) -> None:
    config = load(tmp_path, f"project: p\nregistry: r.db\noffline_store:\n  type: {alias}\n")
    assert config.offline_store.type == "file"


def test_shorthand_forms(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        project: p
        registry: r.db
        online_store: redis
        offline_store: dask
        batch_engine: local
        """,
    )
    assert isinstance(config.online_store, RedisOnlineStoreConfig)
    assert config.offline_store.type == "file"
    assert config.batch_engine.type == "local"


def test_online_store_without_type_is_sqlite(tmp_path: Path) -> None:
    config = load(tmp_path, "project: p\nregistry: r.db\nonline_store:\n  path: x/online.db\n")
    assert config.online_store == SqliteOnlineStoreConfig(path="x/online.db")
    assert config.online_store_path == tmp_path / "x" / "online.db"


def test_key_serialization_version_2_warns(tmp_path: Path) -> None:
    write_yaml(tmp_path, "project: p\nregistry: r.db\nentity_key_serialization_version: 2\n")
    with pytest.warns(DeprecationWarning, match="entity_key_serialization_version 2") as record:
        config = load_repo_config(tmp_path)
    assert config.entity_key_serialization_version == 2
    assert len(record) == 1
    assert str(tmp_path / "feature_store.yaml") in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller, not at pydantic

    with pytest.warns(DeprecationWarning, match="use 3 for new projects"):
        RepoConfig(
            project="p", registry=RegistryConfig(path="r.db"), entity_key_serialization_version=2
        )


@pytest.mark.parametrize("version", [1, 4, 0])
def test_key_serialization_version_out_of_range(tmp_path: Path, version: int) -> None:
    message = load_error(
        tmp_path, f"project: p\nregistry: r.db\nentity_key_serialization_version: {version}\n"
    )
    assert "feature_store.yaml:3: entity_key_serialization_version: " in message
    assert "must be 2 or 3" in message


# -- errors ------------------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = load_error(tmp_path, "project: p\nregistry: r.db\nonline_stor: {}\n")
    path = tmp_path / "feature_store.yaml"
    assert message.startswith(f"{path}:3: online_stor: unknown key; did you mean 'online_store'?")
    assert "known keys:" in message
    assert len(message.splitlines()) == 1


def test_unknown_nested_keys_one_line_each(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        """
        project: p
        registry:
          path: r.db
          cache_ttl: 5
        online_store:
          type: redis
          conection_string: localhost:6379
        feature_server:
          metrics:
            enable: true
        """,
    )
    lines = message.splitlines()
    assert len(lines) == 3
    assert ":4: registry.cache_ttl: unknown key; did you mean 'cache_ttl_seconds'?" in lines[0]
    assert ":7: online_store.conection_string: unknown key; did you mean" in lines[1]
    assert ":10: feature_server.metrics.enable: unknown key; did you mean 'enabled'?" in lines[2]


def test_repo_path_in_the_yaml_is_ignored_as_feast_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Feast's RepoConfig has the key, and its loader overwrites it with the yaml's directory.
    (tmp_path / "feature_store.yaml").write_text("project: p\nregistry: r.db\nrepo_path: /x\n")
    with caplog.at_level("WARNING", logger="repast.config"):
        config = load_repo_config(tmp_path)
    assert config.repo_path == tmp_path.absolute()
    assert [r.getMessage() for r in caplog.records] == [
        f"feature_store.yaml: 'repo_path' is ignored: relative paths resolve against "
        f"{tmp_path}, the directory holding feature_store.yaml (as in Feast)"
    ]


@pytest.mark.parametrize(
    "name", ["_private", "-dash", "has space", "dot.name", "", "ünïcode", "semi;colon"]
)
def test_bad_project_names(tmp_path: Path, name: str) -> None:
    message = load_error(tmp_path, f"project: '{name}'\nregistry: r.db\n")
    assert ":1: project: project name" in message
    assert "letters, digits, '_' and '-'" in message


@pytest.mark.parametrize("name", ["a", "A1", "my_project", "my-project", "0lead", "x_-y"])
def test_good_project_names(tmp_path: Path, name: str) -> None:
    assert load(tmp_path, f"project: {name}\nregistry: r.db\n").project == name


def test_missing_required_keys(tmp_path: Path) -> None:
    message = load_error(tmp_path, "provider: local\n")
    lines = sorted(message.splitlines())
    path = tmp_path / "feature_store.yaml"
    assert lines == [
        f"{path}: project: required key is missing",
        f"{path}: registry: required key is missing",
    ]


def test_bad_types_name_key_and_value(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        """
        project: p
        registry:
          path: r.db
          cache_ttl_seconds: soon
        online_store:
          type: redis
          connection_string: 6379
          redis_type: cluster
          key_ttl_seconds: -5
        coerce_tz_aware: maybe
        provider: azure
        """,
    )
    lines = message.splitlines()
    assert len(lines) == 6
    assert ":4: registry.cache_ttl_seconds: Input should be a valid integer" in lines[0]
    assert "(got 'soon')" in lines[0]
    assert (
        ":7: online_store.connection_string: Input should be a valid string (got 6379)" in lines[1]
    )
    assert ":8: online_store.redis_type: Input should be 'redis', 'redis_cluster' or" in lines[2]
    assert (
        ":9: online_store.key_ttl_seconds: Input should be greater than or equal to 0" in lines[3]
    )
    assert ":10: coerce_tz_aware: Input should be a valid boolean" in lines[4]
    assert ":11: provider: Input should be 'local', 'gcp' or 'aws' (got 'azure')" in lines[5]


def test_sections_must_be_mappings(tmp_path: Path) -> None:
    message = load_error(tmp_path, "project: p\nregistry: 5\nonline_store: null\nauth: []\n")
    assert message.splitlines() == [
        f"{tmp_path / 'feature_store.yaml'}:2: registry: must be a mapping of settings or a path "
        "(got 5)",
        f"{tmp_path / 'feature_store.yaml'}:3: online_store: must be a mapping of settings "
        "(got None)",
        f"{tmp_path / 'feature_store.yaml'}:4: auth: must be a mapping of settings (got [])",
    ]


def test_unknown_online_store_type_lists_supported(tmp_path: Path) -> None:
    message = load_error(tmp_path, "project: p\nregistry: r.db\nonline_store:\n  type: dynamodb\n")
    assert message == (
        f"{tmp_path / 'feature_store.yaml'}:4: online_store.type: online store type 'dynamodb' "
        "is not supported by Repast yet; supported: 'sqlite', 'redis'"
    )


def test_unknown_offline_store_type_lists_supported(tmp_path: Path) -> None:
    message = load_error(tmp_path, "project: p\nregistry: r.db\noffline_store:\n  type: bigquery\n")
    assert ":3: offline_store: offline store type 'bigquery' is not supported by Repast yet" in (
        message
    )
    assert "'file', 'dask', 'duckdb', 'spark'" in message


def test_spark_offline_store_and_engine_take_feasts_keys(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """project: p
registry: r.db
offline_store:
  type: spark
  spark_conf:
    spark.master: "local[2]"
    spark.sql.shuffle.partitions: "4"
  staging_location: s3://bucket/staging
  region: us-east-1
batch_engine:
  type: spark.engine
  partitions: 8
  spark_conf: {spark.executor.memory: 2g}
""",
    )
    assert config.offline_store.type == "spark"
    assert config.offline_store.spark_conf == {
        "spark.master": "local[2]",
        "spark.sql.shuffle.partitions": "4",
    }
    assert config.batch_engine.type == "spark"
    assert config.batch_engine.partitions == 8
    assert config.batch_engine.spark_conf == {"spark.executor.memory": "2g"}


def test_spark_offline_store_unknown_key_is_named(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "project: p\nregistry: r.db\noffline_store:\n  type: spark\n  sparkconf: {}\n"
    )
    assert "feature_store.yaml:5: offline_store.sparkconf: unknown key; did you mean " in message
    assert "'spark_conf'" in message


@pytest.mark.parametrize("registry_type", ["sql", "remote", "snowflake.registry"])
def test_unsupported_registry_types(tmp_path: Path, registry_type: str) -> None:
    message = load_error(
        tmp_path, f"project: p\nregistry:\n  registry_type: {registry_type}\n  path: x\n"
    )
    assert f":3: registry.registry_type: registry_type '{registry_type}' is not supported" in (
        message
    )
    assert "by Repast yet" in message


@pytest.mark.parametrize(
    ("key", "value", "what"),
    [
        ("batch_engine", "ray.engine", "batch engine 'ray.engine'"),
        ("auth", "{type: oidc}", "auth type 'oidc'"),
        ("feature_server", "{type: mcp}", "feature server type 'mcp'"),
    ],
)
def test_unsupported_types_elsewhere(tmp_path: Path, key: str, value: str, what: str) -> None:
    message = load_error(tmp_path, f"project: p\nregistry: r.db\n{key}: {value}\n")
    assert f"{what} is not supported by Repast yet" in message


def test_unsupported_registry_scheme(tmp_path: Path) -> None:
    message = load_error(tmp_path, "project: p\nregistry: gs://bucket/registry.db\n")
    assert ":2: registry.path: registry location 'gs://bucket/registry.db' is not supported" in (
        message
    )


def test_empty_bearer_tokens(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "project: p\nregistry: r.db\nfeature_server:\n  auth: {tokens: ['']}\n"
    )
    assert "feature_server.auth.tokens: bearer tokens must not be empty" in message


def test_bad_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, "project: p\nregistry: r.db\nonline_store:\n  type: [redis\n")
    assert message.startswith(f"{tmp_path / 'feature_store.yaml'}:5: invalid YAML: ")
    message = load_error(tmp_path, "project: p\n  registry: r.db\n")
    assert message.startswith(f"{tmp_path / 'feature_store.yaml'}:2: invalid YAML: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feature_store.yaml: not found") as info:
        load_repo_config(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- project: p\n", "the top level must be a mapping of settings, got a list"),
        ("just words\n", "the top level must be a mapping of settings, got a string"),
    ],
)
def test_not_a_mapping(tmp_path: Path, text: str, expected: str) -> None:
    path = write_yaml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_repo_config(tmp_path)
    assert str(info.value).startswith(f"{path}: {expected}")


def test_config_error_is_a_value_error(tmp_path: Path) -> None:
    write_yaml(tmp_path, "project: p\n")
    with pytest.raises(ValueError, match="registry: required key is missing"):
        load_repo_config(tmp_path)


# -- env vars and paths ------------------------------------------------------------------------


def test_env_var_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_HOST", "cache.internal")
    monkeypatch.setenv("REDIS_PORT", "6380")
    monkeypatch.setenv("TTL", "3600")
    monkeypatch.setenv("REG", "s3://bkt/reg.json")
    monkeypatch.delenv("UNSET_VAR_FOR_TEST", raising=False)
    config = load(
        tmp_path,
        """
        project: p
        registry:
          path: ${REG}
          cache_ttl_seconds: $TTL
        online_store:
          type: redis
          connection_string: "${REDIS_HOST}:${REDIS_PORT},password=${UNSET_VAR_FOR_TEST}"
          key_ttl_seconds: ${TTL}
        """,
    )
    assert config.registry.path == "s3://bkt/reg.json"
    assert config.registry.cache_ttl_seconds == 3600
    assert isinstance(config.online_store, RedisOnlineStoreConfig)
    # Unset variables stay as written (Feast uses os.path.expandvars too).
    assert config.online_store.connection_string == (
        "cache.internal:6380,password=${UNSET_VAR_FOR_TEST}"
    )
    assert config.online_store.key_ttl_seconds == 3600


def test_relative_paths_resolve_against_repo(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "project: p\nregistry: data/registry.db\nonline_store:\n  path: data/online.db\n",
    )
    assert config.registry_path == str(tmp_path / "data" / "registry.db")
    assert config.online_store_path == tmp_path / "data" / "online.db"
    assert config.resolve("data/x.parquet") == tmp_path / "data" / "x.parquet"
    assert config.resolve("/abs/x.parquet") == Path("/abs/x.parquet")
    assert config.resolve("file:///abs/y.parquet") == Path("/abs/y.parquet")
    assert config.resolve_location("s3://bucket/x.parquet") == "s3://bucket/x.parquet"
    assert config.resolve_location("rel/x") == str(tmp_path / "rel" / "x")
    with pytest.raises(ValueError, match="remote location"):
        config.resolve("s3://bucket/x")


def test_absolute_and_s3_registry_paths_are_kept(tmp_path: Path) -> None:
    config = load(tmp_path, "project: p\nregistry: /var/lib/repast/registry.db\n")
    assert config.registry_path == "/var/lib/repast/registry.db"
    config = load(tmp_path, "project: p\nregistry: s3://bucket/path/registry.db\n")
    assert config.registry_path == "s3://bucket/path/registry.db"


def test_yaml_elsewhere_resolves_against_repo_path(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    yaml_file = write_yaml(tmp_path, "project: p\nregistry: data/registry.db\n", "staging.yaml")
    config = load_repo_config(repo, yaml_file)
    assert config.repo_path == repo
    assert config.registry_path == str(repo / "data" / "registry.db")


def test_relative_repo_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_yaml(tmp_path, "project: p\nregistry: r.db\n")
    monkeypatch.chdir(tmp_path.parent)
    config = load_repo_config(Path(tmp_path.name))
    assert config.repo_path == tmp_path
    assert RepoConfig(
        project="p", registry=RegistryConfig(path="r.db"), repo_path=Path("x")
    ).repo_path == (tmp_path.parent / "x")


def test_hand_built_config_validates_too() -> None:
    with pytest.raises(ValidationError):
        RepoConfig(project="p", registry=RegistryConfig(path="r.db"), bogus=1)  # type: ignore[call-arg]
    # The plain-string and mapping forms of the yaml work for validated input too.
    config = RepoConfig.model_validate({"project": "p", "registry": "r.db"})
    assert config.registry == RegistryConfig(path="r.db")
    config = RepoConfig.model_validate(
        {"project": "p", "registry": {"path": "r.db", "cache_ttl_seconds": 1}}
    )
    assert config.registry.cache_ttl_seconds == 1


def test_is_uri() -> None:
    assert is_uri("s3://b/k")
    assert is_uri("file:///x")
    assert not is_uri("/abs/path")
    assert not is_uri("data/registry.db")
    assert not is_uri("C:/windows")


def test_optional_store_clients_are_not_imported() -> None:
    import subprocess
    import sys

    code = (
        "import sys, repast.config, repast.registry; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('redis', 'aiobotocore', 'botocore')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_feast_keys_without_a_repast_part_are_accepted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "feature_store.yaml").write_text(
        "project: demo\nregistry: data/registry.db\nproject_description: drivers\n"
        "flags:\n  alpha_features: true\nopenlineage:\n  enabled: false\n"
        "embedding_model: {}\nmlflow: {}\ndata_quality_monitoring: {}\n"
    )
    with caplog.at_level("WARNING", logger="repast.config"):
        config = load_repo_config(tmp_path)
    assert config.flags == {"alpha_features": True}
    ignored = [r.getMessage() for r in caplog.records]
    assert "feature_store.yaml: 'flags' is ignored: Repast has no feature flags" in ignored[2]
    assert [m.split("'")[1] for m in ignored] == [
        "project_description",
        "embedding_model",
        "flags",
        "openlineage",
        "mlflow",
        "data_quality_monitoring",
    ]


def test_feast_behaviour_switches(tmp_path: Path) -> None:
    base = "project: demo\nregistry: data/registry.db\n"
    (tmp_path / "feature_store.yaml").write_text(base)
    default = load_repo_config(tmp_path)
    assert (default.online_ttl, default.online_write_order) == ("enforce", "newer_wins")
    (tmp_path / "feature_store.yaml").write_text(
        base + "online_ttl: feast\nonline_write_order: feast\n"
    )
    feast = load_repo_config(tmp_path)
    assert (feast.online_ttl, feast.online_write_order) == ("feast", "feast")
    (tmp_path / "feature_store.yaml").write_text(base + "online_ttl: ignore\n")
    with pytest.raises(ConfigError, match="online_ttl"):
        load_repo_config(tmp_path)


FEAST_067_YAML = """\
project: demo
project_description: drivers
provider: local
registry:
  registry_type: file
  path: data/registry.db
  cache_ttl_seconds: 60
  cache_mode: sync
online_store:
  type: sqlite
  path: data/online_store.db
offline_store:
  type: file
batch_engine: local
feature_server:
  type: local
  metrics: {enabled: false}
auth:
  type: no_auth
entity_key_serialization_version: 3
coerce_tz_aware: true
materialization:
  pull_latest_features: false
  online_write_batch_size: 1000
flags:
  alpha_features: true
openlineage:
  enabled: false
mlflow:
  enabled: false
data_quality_monitoring: {}
repo_path: /elsewhere
"""


def test_every_top_level_key_of_feasts_schema_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Every top-level key of Feast 0.67's RepoConfig (Feast's own loader accepts this file):
    # the ones configuring parts Repast lacks are logged once each, the rest are used.
    (tmp_path / "feature_store.yaml").write_text(FEAST_067_YAML)
    with caplog.at_level("WARNING", logger="repast.config"):
        config = load_repo_config(tmp_path)
    assert (config.project, config.registry.cache_ttl_seconds) == ("demo", 60)
    assert config.repo_path == tmp_path.absolute()
    ignored = [r.getMessage().split("'")[1] for r in caplog.records]
    assert ignored == [
        "repo_path",
        "project_description",
        "flags",
        "openlineage",
        "mlflow",
        "data_quality_monitoring",
    ]
