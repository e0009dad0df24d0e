"""The `repast` command line: Feast's commands and flags."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from repast.errors import RepastError

__all__ = ["main"]

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

_TRANSITION_STYLE = {"Created": "green", "Updated": "yellow", "Deleted": "red", "Unchanged": "dim"}


class _Context:
    def __init__(self, chdir: Path | None, yaml_file: Path | None) -> None:
        self.repo_path = (chdir or Path.cwd()).resolve()
        self.yaml_file = yaml_file

    def store(self) -> Any:
        from repast.feature_store import FeatureStore

        return FeatureStore(repo_path=self.repo_path, fs_yaml_file=self.yaml_file)


pass_context = click.make_pass_decorator(_Context)


@click.group()
@click.option(
    "-c",
    "--chdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if started in this repo directory.",
)
@click.option(
    "-f",
    "--feature-store-yaml",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this configuration file instead of <repo>/feature_store.yaml.",
)
@click.option(
    "--log-level",
    default="warning",
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
)
@click.pass_context
def cli(
    ctx: click.Context, chdir: Path | None, feature_store_yaml: Path | None, log_level: str
) -> None:
    """Repast: a fast, Feast-compatible feature store."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = _Context(chdir, feature_store_yaml)


@cli.command()
def version() -> None:
    """Print the Repast version."""
    from repast import _core

    click.echo(f"Repast SDK version {_core.VERSION}")


@cli.command()
@click.argument("project_directory", required=False, default="my_project")
@click.option("-m", "--minimal", is_flag=True, help="Only write feature_store.yaml.")
@click.option("-t", "--template", default="local", show_default=True, help="Project template.")
@click.option("--repo-path", type=click.Path(file_okay=False, path_type=Path), default=None)
@pass_context
def init(
    obj: _Context, project_directory: str, minimal: bool, template: str, repo_path: Path | None
) -> None:
    """Create a new feature repo with demo data."""
    from repast.scaffold import init_repo

    base = repo_path or obj.repo_path
    repo = init_repo(base / project_directory, template=template, minimal=minimal)
    _out.print(f"Created a new Repast repository in [bold green]{repo}[/]")


def _print_diff(text: str) -> None:
    for line in text.splitlines():
        word = line.split(" ", 1)[0]
        style = _TRANSITION_STYLE.get(word)
        _out.print(f"[{style}]{escape(line)}[/]" if style else line, markup=bool(style))


_skip_source = click.option(
    "--skip-source-validation", is_flag=True, help="Do not read the data sources to check them."
)
_skip_view = click.option(
    "--skip-feature-view-validation", is_flag=True, help="Accepted for Feast compatibility."
)


@cli.command()
@_skip_source
@_skip_view
@click.option("--no-progress", is_flag=True, help="Accepted for Feast compatibility.")
@click.option("--no-promote", is_flag=True, help="Accepted for Feast compatibility.")
@pass_context
def apply(
    obj: _Context,
    skip_source_validation: bool,
    skip_feature_view_validation: bool,
    no_progress: bool,
    no_promote: bool,
) -> None:
    """Register the repo's definitions; objects removed from the repo are deleted."""
    diff = obj.store().apply_repo(skip_source_validation=skip_source_validation)
    _print_diff(diff.to_text())


@cli.command()
@_skip_source
@_skip_view
@pass_context
def plan(obj: _Context, skip_source_validation: bool, skip_feature_view_validation: bool) -> None:
    """Show what `apply` would change, without changing anything."""
    diff = obj.store().plan_repo(skip_source_validation=skip_source_validation)
    _print_diff(diff.to_text())


@cli.command()
@pass_context
def teardown(obj: _Context) -> None:
    """Remove the project from the registry."""
    store = obj.store()
    store.teardown()
    _out.print(f"Removed project '{store.project}'")


@cli.command("import-feast-registry")
@click.argument("source", required=False, default="data/registry.db")
@_skip_source
@pass_context
def import_feast_registry(obj: _Context, source: str, skip_source_validation: bool) -> None:
    """Import a Feast registry (a protobuf file, local or s3://) into Repast's registry.

    SOURCE defaults to Feast's data/registry.db. Feast's file is only read; Repast's registry
    is the one feature_store.yaml names, which must be another file."""
    store = obj.store()
    imported = store.import_feast_registry(source, skip_source_validation=skip_source_validation)
    for o in imported.objects:
        kind = re.sub(r"(?<!^)(?=[A-Z])", " ", type(o).__name__).lower()
        _out.print(f"Imported {kind} {o.name}")
    for name, intervals in sorted(imported.intervals.items()):
        _out.print(f"Imported {len(intervals)} materialization interval(s) of {name}")
    for skipped in imported.skipped:
        _err.print(f"Skipped {skipped.kind} {skipped.name}: {escape(skipped.reason)}")
    for other in imported.other_projects:
        _err.print(f"Skipped project {other}: feature_store.yaml's project is {store.project}")


@cli.command("registry-dump")
@pass_context
def registry_dump(obj: _Context) -> None:
    """Print the project's registry contents as JSON."""
    sys.stdout.write(orjson.dumps(obj.store().registry_dump(), option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    _out.print(table)


def _describe(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")


def _tags_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--tags",
        multiple=True,
        help="Only objects with this tag (key:value); repeat to require several.",
    )(func)


def _parse_tags(tags: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if not sep:
            raise click.BadParameter(f"'{tag}' is not key:value", param_hint="--tags")
        parsed[key.strip()] = value.strip()
    return parsed


def _object_group(
    name: str,
    lister: str,
    getter: str,
    columns: Sequence[str],
    row: Callable[[Any], Sequence[str]],
) -> None:
    group = click.Group(name, help=f"Inspect {name.replace('-', ' ')}.")

    @group.command("list")
    @_tags_option
    @pass_context
    def list_command(obj: _Context, tags: tuple[str, ...]) -> None:
        items = getattr(obj.store(), lister)(tags=_parse_tags(tags))
        _table(columns, [row(item) for item in sorted(items, key=lambda i: i.name)])

    @group.command("describe")
    @click.argument("object_name")
    @pass_context
    def describe_command(obj: _Context, object_name: str) -> None:
        _describe(getattr(obj.store(), getter)(object_name))

    list_command.help = f"List the project's {name.replace('-', ' ')}."
    describe_command.help = "Print one object's definition as JSON."
    cli.add_command(group)


def _view_row(view: Any) -> Sequence[str]:
    return (view.name, ", ".join(sorted(view.entities)) or "-", type(view).__name__)


_object_group(
    "entities",
    "list_entities",
    "get_entity",
    ("NAME", "DESCRIPTION", "TYPE"),
    lambda e: (e.name, e.description, e.value_type.name),
)
_object_group(
    "feature-views",
    "list_all_feature_views",
    "get_feature_view",
    ("NAME", "ENTITIES", "TYPE"),
    _view_row,
)
_object_group(
    "stream-feature-views",
    "list_stream_feature_views",
    "get_stream_feature_view",
    ("NAME", "ENTITIES", "TYPE"),
    _view_row,
)
_object_group(
    "label-views",
    "list_label_views",
    "get_label_view",
    ("NAME", "ENTITIES", "TYPE"),
    _view_row,
)
_object_group(
    "on-demand-feature-views",
    "list_on_demand_feature_views",
    "get_on_demand_feature_view",
    ("NAME",),
    lambda v: (v.name,),
)
_object_group(
    "feature-services",
    "list_feature_services",
    "get_feature_service",
    ("NAME", "FEATURES"),
    lambda s: (
        s.name,
        ", ".join(
            f"{p.name_to_use()}:{f.name}" for p in s.feature_view_projections for f in p.features
        ),
    ),
)
_object_group(
    "data-sources",
    "list_data_sources",
    "get_data_source",
    ("NAME", "CLASS"),
    lambda s: (s.name, type(s).__name__),
)


def _timestamp(text: str, name: str) -> Any:
    from datetime import UTC, datetime

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not an ISO 8601 time", param_hint=name) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # naive = UTC


_views_option = click.option(
    "-v", "--views", multiple=True, help="Only this feature view; repeat for several."
)


@cli.command()
@click.argument("start_ts", required=False)
@click.argument("end_ts", required=False)
@_views_option
@click.option(
    "--disable-event-timestamp", is_flag=True, help="Ignore the times: load 1970-01-01 to now."
)
@pass_context
def materialize(
    obj: _Context,
    start_ts: str | None,
    end_ts: str | None,
    views: tuple[str, ...],
    disable_event_timestamp: bool,
) -> None:
    """Load the latest row per entity between START_TS and END_TS into the online store."""
    from datetime import UTC, datetime

    if disable_event_timestamp:
        start, end = datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC)
    elif start_ts is None or end_ts is None:
        raise click.UsageError("give START_TS and END_TS, or --disable-event-timestamp")
    else:
        start, end = _timestamp(start_ts, "START_TS"), _timestamp(end_ts, "END_TS")
    obj.store().materialize(start, end, list(views) or None)


@cli.command("materialize-incremental")
@click.argument("end_ts")
@_views_option
@pass_context
def materialize_incremental(obj: _Context, end_ts: str, views: tuple[str, ...]) -> None:
    """Load everything since each view's last materialization up to END_TS."""
    obj.store().materialize_incremental(_timestamp(end_ts, "END_TS"), list(views) or None)


def _json_default(value: Any) -> Any:
    import base64
    from datetime import datetime

    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot print {type(value).__name__}")


@cli.command("get-online-features")
@click.option(
    "-e", "--entities", multiple=True, required=True, help="join_key=value; repeat for more."
)
@click.option("-f", "--features", multiple=True, required=True, help="view:feature; repeatable.")
@pass_context
def get_online_features(
    obj: _Context, entities: tuple[str, ...], features: tuple[str, ...]
) -> None:
    """Print the online values of features for entities, as JSON."""
    columns: dict[str, list[Any]] = {}
    for item in entities:
        key, sep, text = item.partition("=")
        if not sep:
            raise click.BadParameter(f"'{item}' is not join_key=value", param_hint="--entities")
        try:
            value: Any = orjson.loads(text)  # 1001 is a number, "x" or x a string
        except orjson.JSONDecodeError:
            value = text
        columns.setdefault(key.strip(), []).append(value)
    response = obj.store().get_online_features(list(features), columns)
    out = orjson.dumps(response.to_dict(), default=_json_default, option=orjson.OPT_INDENT_2)
    sys.stdout.write(out.decode() + "\n")


@cli.command("get-historical-features")
@click.option(
    "-d",
    "--dataframe",
    required=True,
    help='Entity rows as JSON records, e.g. \'[{"driver_id": 1001, "event_timestamp": ...}]\'.',
)
@click.option("-f", "--features", multiple=True, required=True, help="view:feature; repeatable.")
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@pass_context
def get_historical_features(
    obj: _Context, dataframe: str, features: tuple[str, ...], full_feature_names: bool
) -> None:
    """Print a point-in-time correct training frame for the given entity rows."""
    import pyarrow as pa

    try:
        records = orjson.loads(dataframe)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--dataframe") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise click.BadParameter("must be a JSON list of objects", param_hint="--dataframe")
    entity = pa.Table.from_pylist(records)
    for name in entity.column_names:
        # JSON has no timestamps: ISO strings in timestamp-like columns become UTC times.
        if "timestamp" in name and pa.types.is_string(entity.schema.field(name).type):
            parsed = pa.compute.cast(
                pa.compute.strptime(
                    pa.compute.replace_substring_regex(entity[name], "Z$", "+0000"),
                    "%Y-%m-%dT%H:%M:%S%z",
                    "us",
                ),
                pa.timestamp("us", tz="UTC"),
            )
            entity = entity.set_column(entity.schema.get_field_index(name), name, parsed)
    job = obj.store().get_historical_features(
        entity, list(features), full_feature_names=full_feature_names
    )
    table = job.to_arrow()
    _table(table.column_names, [[_cell(v) for v in row.values()] for row in table.to_pylist()])


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


@cli.command(context_settings={"help_option_names": ["--help"]})
@click.option("-h", "--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("-p", "--port", default=6566, show_default=True, type=int, help="Port to bind.")
@click.option("-t", "--type", "type_", default="http", type=click.Choice(["http"]))
@click.option("--no-access-log", is_flag=True, help="Do not log every request.")
@click.option("-w", "--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--worker-connections", default=1000, type=int, help="Accepted (Feast's flag).")
@click.option("--max-requests", default=None, type=int, help="Restart a worker after N requests.")
@click.option("--max-requests-jitter", default=50, type=int, help="Accepted (Feast's flag).")
@click.option("--keep-alive-timeout", default=30, show_default=True, type=int)
@click.option(
    "-r",
    "--registry-ttl-sec",
    "--registry_ttl_sec",
    "registry_ttl_sec",
    default=60,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds between background registry refreshes.",
)
@click.option("-k", "--key", default=None, help="TLS private key file.")
@click.option("-c", "--cert", default=None, help="TLS certificate file.")
@click.option("-m", "--metrics", is_flag=True, help="Accepted; /metrics is always on.")
@click.option(
    "--graceful-timeout",
    default=25.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds after SIGTERM for in-flight requests and materialization jobs to finish; "
    "jobs still running then are cancelled and not recorded as materialized.",
)
@pass_context
def serve(
    obj: _Context,
    host: str,
    port: int,
    type_: str,
    no_access_log: bool,
    workers: int,
    worker_connections: int,
    max_requests: int | None,
    max_requests_jitter: int,
    keep_alive_timeout: int,
    registry_ttl_sec: float,
    key: str | None,
    cert: str | None,
    metrics: bool,
    graceful_timeout: float,
) -> None:
    """Start the feature server (Feast's HTTP API)."""
    try:
        from repast_server.app import ServerSettings
        from repast_server.serve import serve as run_server
    except ImportError:
        raise click.ClickException("install `repast-server` to use `repast serve`") from None
    run_server(
        ServerSettings(obj.repo_path, obj.yaml_file, registry_ttl_sec),
        host=host,
        port=port,
        workers=workers,
        access_log=not no_access_log,
        keep_alive_timeout=keep_alive_timeout,
        max_requests=max_requests,
        ssl_keyfile=key,
        ssl_certfile=cert,
        graceful_timeout=graceful_timeout,
    )


@cli.command()
@click.option(
    "-v", "--view", "views", multiple=True, help="Consume only this view; repeat for several."
)
@click.option(
    "--group-id",
    default=None,
    help="Consumer group prefix; each view's group is <group-id>.<view> [repast.<project>].",
)
@click.option(
    "--from-beginning",
    is_flag=True,
    help="A group without committed offsets starts at the oldest message, not the newest.",
)
@click.option(
    "--dead-letter-topic",
    default="{topic}.dlq",
    show_default=True,
    help="Topic for messages that cannot be stored; {topic} is the source topic.",
)
@click.option(
    "--bootstrap-servers", default=None, help="Override every KafkaSource's bootstrap servers."
)
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus /metrics here.")
@pass_context
def stream(
    obj: _Context,
    views: tuple[str, ...],
    group_id: str | None,
    from_beginning: bool,
    dead_letter_topic: str,
    bootstrap_servers: str | None,
    metrics_port: int | None,
) -> None:
    """Ingest the KafkaSource topics of the repo's views until Ctrl-C (or SIGTERM)."""
    try:
        from repast.stream import run_streams
    except ImportError as exc:
        raise click.ClickException(
            f"`repast stream` needs the kafka extra: install `repast[kafka]` ({exc})"
        ) from None
    run_streams(
        obj.store().context,
        list(views) or None,
        metrics_port=metrics_port,
        group_id=group_id,
        from_beginning=from_beginning,
        dead_letter_topic=dead_letter_topic,
        bootstrap_servers=bootstrap_servers,
    )


@cli.group()
def projects() -> None:
    """Inspect the registry's projects."""


@projects.command("list")
@pass_context
def projects_list(obj: _Context) -> None:
    """List every project in the registry."""
    _table(("NAME",), [(p,) for p in obj.store().list_projects()])


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; Repast errors print one clear message instead of a traceback."""
    try:
        cli.main(args=argv, prog_name="repast", standalone_mode=False)
    except click.exceptions.Abort:
        _err.print("Aborted.")
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RepastError as exc:
        _err.print(f"[bold red]Error:[/] {escape(str(exc))}", markup=True)
        if os.environ.get("REPAST_TRACEBACK"):
            raise
        sys.exit(1)
