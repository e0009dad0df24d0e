"""`feature_store.yaml`: pydantic models with Feast's keys and defaults, and the loader.

Every model forbids unknown keys, so a typo is an error that names the file, the line and
the key path instead of a setting that is silently ignored.

    >>> config = RepoConfig(project="demo", registry="data/registry.json", repo_path=Path("/r"))
    >>> config.registry.path, config.online_store.type, str(config.registry_path)
    ('data/registry.json', 'sqlite', '/r/data/registry.json')
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from repast.errors import ConfigError

__all__ = [
    "AuthConfig",
    "BatchEngineConfig",
    "FeatureServerAuthConfig",
    "FeatureServerConfig",
    "FileOfflineStoreConfig",
    "MaterializationConfig",
    "MetricsConfig",
    "OnlineStoreConfig",
    "RedisOnlineStoreConfig",
    "RegistryConfig",
    "RepoConfig",
    "SqliteOnlineStoreConfig",
    "is_uri",
    "load_repo_config",
]

FEATURE_STORE_YAML = "feature_store.yaml"

logger = logging.getLogger(__name__)

_IGNORED_FEAST_KEYS = {
    "project_description": "Repast takes a project's description from a `Project` in the repo",
    "embedding_model": "Repast has no embedding or vector search support",
    "flags": "Repast has no feature flags (alpha features of Feast)",
    "openlineage": "Repast emits no OpenLineage events",
    "mlflow": "Repast has no MLflow integration",
    "data_quality_monitoring": "Repast has no data quality monitoring",
}

_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path: str) -> bool:
    """True for `scheme://...` locations (`s3://bucket/key`), which are never resolved locally."""
    return _URI.match(path) is not None


def _not_supported(what: str, value: str, supported: Sequence[str]) -> ValueError:
    names = ", ".join(f"'{s}'" for s in supported)
    return ValueError(f"{what} '{value}' is not supported by Repast yet; supported: {names}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegistryConfig(_Model):
    """`registry:` as a mapping; a plain string is shorthand for `{path: <string>}`."""

    registry_type: str = "file"
    path: str
    cache_ttl_seconds: NonNegativeInt = 600
    """Seconds a snapshot is reused before it is read again; 0 means never expire."""
    cache_mode: Literal["sync", "thread"] = "sync"
    """`sync` reads the registry when the cache is stale; `thread` keeps serving the stale
    snapshot and refreshes in a background thread."""
    s3_additional_kwargs: dict[str, str] | None = None
    """Extra arguments for every S3 `PutObject` (e.g. `ServerSideEncryption`)."""
    enable_online_feature_view_versioning: bool = False
    s3_endpoint_override: str | None = None
    """Repast addition: S3 endpoint URL; else `FEAST_S3_ENDPOINT_URL`, else `AWS_ENDPOINT_URL`."""

    @field_validator("registry_type")
    @classmethod
    def _check_registry_type(cls, value: str) -> str:
        if value != "file":
            raise _not_supported("registry_type", value, ["file"])
        return value

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the registry path must not be empty")
        scheme = value.split("://", 1)[0] if is_uri(value) else ""
        if scheme not in ("", "file", "s3"):
            raise ValueError(
                f"registry location '{value}' is not supported by Repast yet; "
                "use a local path or s3://bucket/key"
            )
        return value


class SqliteOnlineStoreConfig(_Model):
    type: Literal["sqlite"] = "sqlite"
    path: str = "data/online.db"


class RedisOnlineStoreConfig(_Model):
    type: Literal["redis"] = "redis"
    redis_type: Literal["redis", "redis_cluster", "redis_sentinel"] = "redis"
    connection_string: str = "localhost:6379"
    """Comma list: `host:port` nodes, then `key=value` client options (`db=0,ssl=true`)."""
    sentinel_master: str = "mymaster"
    key_ttl_seconds: NonNegativeInt | None = None
    """If set (non-zero), every written key expires this many seconds after its last write."""
    full_scan_for_deletion: bool = True
    skip_dedup: bool = False
    layout: Literal["packed", "feast"] = "packed"
    """`packed` (Repast's own, default) or `feast` (byte-identical to Feast's Redis store)."""


OnlineStoreConfig = Annotated[
    SqliteOnlineStoreConfig | RedisOnlineStoreConfig, Field(discriminator="type")
]
_ONLINE_STORE_TYPES = ("sqlite", "redis")

_OFFLINE_STORE_ALIASES = ("file", "dask", "duckdb")
_OFFLINE_STORE_TYPES = (*_OFFLINE_STORE_ALIASES, "spark")


class FileOfflineStoreConfig(_Model):
    """Repast's Parquet file store; Feast's `file`, `dask` and `duckdb` types all map to it
    (`RepoConfig` turns them into `file`)."""

    type: Literal["file"] = "file"
    memory_limit: PositiveInt | None = None
    """Bytes a point-in-time join may hold (`8GiB`, `512MiB`, `2GB` or a number); larger joins
    stream their sources. Default: half the available memory; `REPAST_OFFLINE_MEMORY_LIMIT`
    overrides it."""

    @field_validator("memory_limit", mode="before")
    @classmethod
    def _byte_size(cls, value: object) -> object:
        # Imported here: repast.offline imports the models of this module's users.
        from repast.offline.budget import parse_byte_size

        return parse_byte_size(value) if isinstance(value, str) else value


class SparkOfflineStoreConfig(_Model):
    """Feast's `spark` offline store: historical retrieval runs as a Spark job
    (`repast.spark`, needs `repast[spark]`)."""

    type: Literal["spark"] = "spark"
    spark_conf: dict[str, str] | None = None
    """Spark settings for the session: `spark.master` (default `local[*]`), or `spark.remote`
    (`sc://host:15002`) for Spark Connect, and any other `spark.*` key."""
    staging_location: str | None = None
    """Accepted for Feast's files; Repast's Spark jobs stage nothing."""
    region: str | None = None
    """Accepted for Feast's files (the AWS region of `staging_location`)."""
    partitions: PositiveInt | None = None
    """Repast addition: key-hash buckets of the join (default: `spark.sql.shuffle.partitions`);
    more buckets hold fewer rows each in a Python worker."""


OfflineStoreConfig = Annotated[
    FileOfflineStoreConfig | SparkOfflineStoreConfig, Field(discriminator="type")
]


class LocalBatchEngineConfig(_Model):
    type: Literal["local"] = "local"


class SparkBatchEngineConfig(_Model):
    """Materialization as a Spark job (`repast.spark.materialize`): Feast's `spark.engine`."""

    type: Literal["spark"] = "spark"
    spark_conf: dict[str, str] | None = None
    """As `offline_store.spark_conf`; when both are given, these keys win for the session."""
    staging_location: str | None = None
    region: str | None = None
    partitions: NonNegativeInt = 0
    """Key-hash partitions of the latest-row reduction and the writes; 0 =
    `spark.sql.shuffle.partitions`."""


BatchEngineConfig = Annotated[
    LocalBatchEngineConfig | SparkBatchEngineConfig, Field(discriminator="type")
]


class MaterializationConfig(_Model):
    pull_latest_features: bool = False
    online_write_batch_size: PositiveInt | None = None


class MetricsConfig(_Model):
    enabled: bool = False


class FeatureServerAuthConfig(_Model):
    """Repast addition: require `Authorization: Bearer <token>` on every request but `/health`."""

    type: Literal["bearer"] = "bearer"
    tokens: list[str] = Field(min_length=1, repr=False)

    @field_validator("tokens")
    @classmethod
    def _check_tokens(cls, tokens: list[str]) -> list[str]:
        if any(not token.strip() for token in tokens):
            raise ValueError("bearer tokens must not be empty")
        return tokens


# Reads answer in milliseconds and a push of max_body_bytes in a few seconds: past this a
# request is stuck, and a 504 frees its client (and its slot) instead of holding it forever.
DEFAULT_REQUEST_TIMEOUT_SECONDS = 10.0


class FeatureServerConfig(_Model):
    type: Literal["local"] = "local"
    enabled: bool = False
    transformation_service_endpoint: str = "localhost:6569"
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    offline_push_batching_enabled: bool = False
    offline_push_batching_batch_size: PositiveInt | None = None
    offline_push_batching_batch_interval_seconds: PositiveInt | None = None
    # Repast additions for `repast serve`.
    auth: FeatureServerAuthConfig | None = None
    max_body_bytes: PositiveInt = 32 * 1024 * 1024
    max_entities_per_request: PositiveInt = 100_000
    request_timeout_seconds: PositiveFloat | None = DEFAULT_REQUEST_TIMEOUT_SECONDS
    """Deadline of every read and push (504 past it); null turns it off."""

    @field_validator("type", mode="before")
    @classmethod
    def _check_type(cls, value: object) -> object:
        if isinstance(value, str) and value != "local":
            raise _not_supported("feature server type", value, ["local"])
        return value


class AuthConfig(_Model):
    type: Literal["no_auth"] = "no_auth"

    @field_validator("type", mode="before")
    @classmethod
    def _check_type(cls, value: object) -> object:
        if isinstance(value, str) and value != "no_auth":
            raise _not_supported("auth type", value, ["no_auth"])
        return value


class RepoConfig(_Model):
    """The whole `feature_store.yaml`; `repo_path` is set by the loader, not read from the file."""

    project: str
    provider: Literal["local", "gcp", "aws"] = "local"
    registry: RegistryConfig
    online_store: OnlineStoreConfig = Field(default_factory=SqliteOnlineStoreConfig)
    offline_store: OfflineStoreConfig = Field(default_factory=FileOfflineStoreConfig)
    batch_engine: BatchEngineConfig = Field(default_factory=LocalBatchEngineConfig)
    entity_key_serialization_version: Literal[2, 3] = 3
    coerce_tz_aware: bool = True
    materialization: MaterializationConfig = Field(default_factory=MaterializationConfig)
    feature_server: FeatureServerConfig = Field(default_factory=FeatureServerConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    # Repast's switches back to Feast's behaviour (docs/migrating-from-feast.md).
    online_ttl: Literal["enforce", "feast"] = "enforce"
    """`enforce`: a value older than its view's ttl is served as null, OUTSIDE_MAX_AGE.
    `feast`: the ttl is ignored on online reads, as Feast 0.67 does."""
    online_write_order: Literal["newer_wins", "feast"] = "newer_wins"
    """`newer_wins`: every store keeps the newer event time (equal or older is skipped).
    `feast`: each store writes as Feast's does: SQLite keeps whatever was written last (the
    last row of a batch for a key), Redis keeps the strictly newer event time (unchanged)."""
    # Feast 0.67 keys that configure parts Repast does not have: accepted, ignored, logged once.
    project_description: str | None = None
    embedding_model: Any = None
    flags: Any = None
    openlineage: Any = None
    mlflow: Any = None
    data_quality_monitoring: Any = None
    repo_path: Path = Field(default_factory=Path.cwd, exclude=True)
    """Directory relative paths resolve against: the feature repo (normally the yaml's
    directory); the working directory when a `RepoConfig` is built by hand without one."""

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str) -> str:
        if not _PROJECT_NAME.fullmatch(value):
            raise ValueError(
                f"project name '{value}' must use only letters, digits, '_' and '-', "
                "and must not start with '_' or '-'"
            )
        return value

    @field_validator("registry", mode="before")
    @classmethod
    def _registry_shorthand(cls, value: object) -> object:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("online_store", mode="before")
    @classmethod
    def _online_store_shorthand(cls, value: object) -> object:
        if isinstance(value, str):
            return {"type": value}
        if isinstance(value, Mapping) and "type" not in value:
            return {"type": "sqlite", **value}
        return value

    @field_validator("offline_store", mode="before")
    @classmethod
    def _offline_store_type(cls, value: object) -> object:
        value = {"type": value} if isinstance(value, str) else value
        if isinstance(value, Mapping):
            kind = value.get("type", "file")
            if isinstance(kind, str) and kind not in _OFFLINE_STORE_TYPES:
                raise _not_supported("offline store type", kind, _OFFLINE_STORE_TYPES)
            # Feast's file-store names all select the Parquet store.
            return {**value, "type": "spark" if kind == "spark" else "file"}
        return value

    @field_validator("batch_engine", mode="before")
    @classmethod
    def _batch_engine_type(cls, value: object) -> object:
        value = {"type": value} if isinstance(value, str) else value
        if isinstance(value, Mapping):
            kind = value.get("type", "local")
            if isinstance(kind, str) and kind not in ("local", "spark", "spark.engine"):
                raise _not_supported("batch engine", kind, ["local", "spark", "spark.engine"])
            return {**value, "type": "spark" if kind == "spark.engine" else kind}
        return value

    @field_validator("entity_key_serialization_version", mode="before")
    @classmethod
    def _check_key_version(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if value == 2:
            # The loader warns itself, naming the file and pointing at its caller.
            if not (info.context or {}).get("loader"):
                warnings.warn(
                    "entity_key_serialization_version 2 is deprecated (as in Feast); "
                    "use 3 for new projects",
                    DeprecationWarning,
                    stacklevel=2,
                )
        elif isinstance(value, int) and not isinstance(value, bool) and value != 3:
            raise ValueError(f"entity_key_serialization_version must be 2 or 3, got {value}")
        return value

    @model_validator(mode="after")
    def _log_ignored_keys(self) -> RepoConfig:
        for key, what in _IGNORED_FEAST_KEYS.items():
            if getattr(self, key) is not None:
                logger.warning("feature_store.yaml: '%s' is ignored: %s", key, what)
        return self

    @model_validator(mode="after")
    def _absolute_repo_path(self) -> RepoConfig:
        if not self.repo_path.is_absolute():
            self.repo_path = self.repo_path.absolute()
        return self

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A local path made absolute against `repo_path`; `file://` is stripped."""
        text = os.fspath(path)
        if text.startswith("file://"):
            text = text[len("file://") :]
        elif is_uri(text):
            raise ValueError(f"'{text}' is a remote location, not a local path")
        local = Path(text).expanduser()
        if local.is_absolute():
            return local
        return self.repo_path / local

    def resolve_location(self, path: str) -> str:
        """Like `resolve`, but remote locations (`s3://...`) come back unchanged."""
        if is_uri(path) and not path.startswith("file://"):
            return path
        return str(self.resolve(path))

    @property
    def registry_path(self) -> str:
        """The registry location: an absolute local path, or the `s3://` URI as written."""
        return self.resolve_location(self.registry.path)

    @property
    def online_store_path(self) -> Path:
        """The SQLite database file (only for `online_store.type: sqlite`)."""
        if not isinstance(self.online_store, SqliteOnlineStoreConfig):
            raise ValueError(f"online store type '{self.online_store.type}' has no file path")
        return self.resolve(self.online_store.path)


# -- loading -----------------------------------------------------------------------------------


def _expand_env(value: Any) -> Any:
    """Expand `$VAR` / `${VAR}` in every string value (not in keys), as Feast does for the
    whole file; unset variables are left as written."""
    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def load_repo_config(repo_path: Path, fs_yaml_file: Path | None = None) -> RepoConfig:
    """Read and validate `feature_store.yaml` (by default `<repo_path>/feature_store.yaml`).

    Raises `ConfigError` with one line per problem, each naming the file, the line and the
    key path, e.g. `/repo/feature_store.yaml:4: online_store.redis_type: ...`.
    """
    repo_path = Path(repo_path).absolute()
    yaml_file = Path(fs_yaml_file) if fs_yaml_file is not None else repo_path / FEATURE_STORE_YAML
    yaml_file = yaml_file.absolute()
    try:
        text = yaml_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{yaml_file}: not found; a feature repo needs a {FEATURE_STORE_YAML} "
            "(`repast init` creates one)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{yaml_file}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{yaml_file}:{mark.line + 1}" if mark is not None else str(yaml_file)
        problem = "; ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{yaml_file}: invalid YAML: {exc}") from None
    if raw is None:
        raise ConfigError(f"{yaml_file}: the file is empty; it needs at least `project:`")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{yaml_file}: the top level must be a mapping of settings, got {_yaml_type_name(raw)}"
        )
    data = _expand_env(raw)
    problems: list[tuple[int, str]] = []
    if "repo_path" in data:
        # A key of Feast's RepoConfig whose value Feast's loader also overwrites.
        logger.warning(
            "feature_store.yaml: 'repo_path' is ignored: relative paths resolve against %s, "
            "the directory holding %s (as in Feast)",
            repo_path,
            FEATURE_STORE_YAML,
        )
        del data["repo_path"]
    try:
        config = RepoConfig.model_validate(
            {**data, "repo_path": repo_path}, context={"loader": True}
        )
    except ValidationError as exc:
        problems.extend(_format_errors(exc, yaml_file, node, data))
    if problems:
        # One line per problem, in file order; problems without a line (missing keys) last.
        problems.sort(key=lambda problem: problem[0])
        raise ConfigError("\n".join(text for _, text in problems))
    if config.entity_key_serialization_version == 2:
        warnings.warn(
            f"{yaml_file}: entity_key_serialization_version 2 is deprecated (as in Feast); "
            "use 3 for new projects",
            DeprecationWarning,
            stacklevel=2,
        )
    return config


def _yaml_type_name(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a value of type {type(value).__name__}"


def _format_errors(
    exc: ValidationError, yaml_file: Path, node: yaml.Node | None, data: dict[str, Any]
) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    for error in exc.errors(include_url=False):
        loc = _clean_loc(error["loc"], data)
        kind = error["type"]
        if kind == "extra_forbidden":
            reason = "unknown key" + _suggest(loc, data)
        elif kind == "union_tag_invalid":
            ctx = error.get("ctx", {})
            loc = (*loc, "type")
            reason = (
                f"online store type '{ctx.get('tag')}' is not supported by Repast yet; "
                f"supported: {', '.join(repr(t) for t in _ONLINE_STORE_TYPES)}"
            )
        elif kind == "missing":
            reason = "required key is missing"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            shorthand = " or a path" if tuple(loc) == ("registry",) else ""
            reason = f"must be a mapping of settings{shorthand} (got {_short_repr(error['input'])})"
        else:
            reason = error["msg"].removeprefix("Value error, ")
            if kind not in ("value_error", "assertion_error") and "input" in error:
                reason += f" (got {_short_repr(error['input'])})"
        lines.append(_problem(yaml_file, node, loc, reason))
    return lines


def _clean_loc(loc: tuple[int | str, ...], data: dict[str, Any]) -> tuple[int | str, ...]:
    """Drop the discriminator tag pydantic puts into the location of tagged-union members
    (`online_store.redis.connection_string` -> `online_store.connection_string`)."""
    tags = {
        "online_store": _ONLINE_STORE_TYPES,
        "offline_store": ("file", "spark"),
        "batch_engine": ("local", "spark"),
    }
    if len(loc) >= 2 and isinstance(loc[0], str) and loc[1] in tags.get(loc[0], ()):
        return (loc[0], *loc[2:])
    return loc


def _suggest(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    model = _model_at(loc[:-1], data)
    if model is None or not isinstance(loc[-1], str):
        return ""
    known = [
        name for name in model.model_fields if not (model is RepoConfig and name == "repo_path")
    ]
    close = difflib.get_close_matches(loc[-1], known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{hint} (known keys: {', '.join(sorted(known))})"


def _model_at(loc: Sequence[int | str], data: Any) -> type[BaseModel] | None:
    model: type[BaseModel] = RepoConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        data = data.get(part) if isinstance(data, dict) else None
        candidates = [
            arg
            for arg in _flatten(field.annotation)
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        if len(candidates) > 1 and isinstance(data, dict):
            chosen = [c for c in candidates if c.model_fields["type"].default == data.get("type")]
            candidates = chosen or candidates
        if not candidates:
            return None
        model = candidates[0]
    return model


def _flatten(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [a for arg in typing.get_args(annotation) for a in _flatten(arg)]
    return [annotation]


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(
    yaml_file: Path, node: yaml.Node | None, loc: Sequence[int | str], reason: str
) -> tuple[int, str]:
    """`(line, "<file>:<line>: <key.path>: <reason>")`; the line is left out when unknown."""
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = _key_line(node, loc)
    if line is None:
        return (1 << 30, f"{yaml_file}: {key}: {reason}")
    return (line, f"{yaml_file}:{line}: {key}: {reason}")


def _key_line(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """1-based line of the deepest key of `loc` that exists in the YAML node tree."""
    found: int | None = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    found = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return found
            node = node.value[part]
            found = node.start_mark.line + 1
        else:
            return found
    return found
