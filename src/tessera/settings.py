"""Every setting in one declarative table.

Each :class:`Setting` has a name, a type, a default and a help line. The same table drives
``Settings.from_env`` (``TESSERA_HOME`` and ``TESSERA__<NAME>`` variables), the settings file
(TOML, ``--settings FILE`` or ``TESSERA_SETTINGS``), the CLI's ``--setting name=value`` option, the
``/tessera/settings`` endpoint and the docs test.

A settings file selects embedded or distributed backends, for example::

    point_store = "redis"
    redis_url = "redis://10.0.0.5:6379/0"
    redis_cluster = true
    kafka_bootstrap = "10.0.0.7:9092,10.0.0.8:9092"
    stream_topic = "tessera-ingest"
    stream_partitions = 16
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tessera.errors import InvalidInput


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "home", str, "./tessera-data", "Data directory; one folder per sandbox under it (env TESSERA_HOME)."
    ),
    Setting(
        "host", str, "127.0.0.1", "Address the server binds to; anything but loopback requires API keys."
    ),
    Setting("port", int, 8000, "Port the server listens on."),
    Setting(
        "group_commit_ms", float, 1.0, "Longest time the writer waits to group more writes into one commit."
    ),
    Setting(
        "graph_limit", int, 50, "Default maximum identities per identity graph (per-sandbox rules override)."
    ),
    Setting(
        "store_memory_mib",
        int,
        128,
        "Memory the embedded store's page caches may hold in all, across every connection of the process"
        " (SQLite soft heap limit; 0 = no limit). Reads beyond it come from the OS file cache.",
    ),
    Setting("max_identities_per_row", int, 20, "Rows carrying more identities than this are refused."),
    Setting(
        "max_profile_record_bytes", int, 100_000, "Profile records larger than this (JSON bytes) are refused."
    ),
    Setting("max_event_bytes", int, 10_000, "ExperienceEvents larger than this (JSON bytes) are refused."),
    Setting("max_streaming_message_bytes", int, 1_000_000, "Streaming messages over this size get HTTP 413."),
    Setting(
        "max_streaming_batch_messages",
        int,
        10_000,
        "Messages per /collection/batch request (more: HTTP 413).",
    ),
    Setting(
        "max_json_body_bytes",
        int,
        20_000_000,
        "JSON request bodies over this size get HTTP 413 (not streaming).",
    ),
    Setting(
        "max_upload_bytes", int, 512_000_000, "Batch file uploads (one PUT or PATCH) over this get HTTP 413."
    ),
    Setting("max_merge_policies", int, 5, "Maximum number of merge policies per sandbox."),
    Setting("max_pql_length", int, 100_000, "PQL expressions longer than this (characters) are refused."),
    Setting("max_pql_depth", int, 200, "PQL expressions nested deeper than this are refused."),
    Setting("max_regex_length", int, 1_000, "Regular expressions in PQL longer than this are refused."),
    Setting("regex_timeout_ms", int, 50, "Time limit for one regular-expression evaluation in PQL."),
    Setting("query_timeout_s", float, 30.0, "Time limit for one batch query (segment job, estimate)."),
    Setting(
        "estimate_exact_limit",
        int,
        1_000_000,
        "Segment estimates are exact up to this many profiles; above, a uniform sample of this size "
        "is evaluated and the size given with a 95% confidence interval.",
    ),
    Setting(
        "estimate_sample_size",
        int,
        2_000,
        "The UI segment builder's live estimate reads at most this many profiles (a uniform sample "
        "above it, its 95% interval at most 2.2% of the profiles either side), so its time and "
        "memory do not grow with the sandbox.",
    ),
    Setting("rate_limit_per_s", float, 0.0, "Requests per second allowed per API key (0 = unlimited)."),
    Setting("tenant", str, "tessera", "Tenant id: custom XDM fields live under `_<tenant>`."),
    Setting("point_store", str, "sqlite", "Point-state backend: `sqlite` (embedded) or `redis` (scale-out)."),
    Setting(
        "redis_url",
        str,
        "redis://127.0.0.1:6379/0",
        "Redis server (any node of a cluster) when point_store=redis.",
    ),
    Setting("redis_cluster", bool, False, "Talk the Redis Cluster protocol."),
    Setting(
        "redis_namespace",
        str,
        "tessera",
        "Key prefix of this installation in Redis (sandbox names are appended).",
    ),
    Setting(
        "kafka_bootstrap",
        str,
        "",
        "Kafka bootstrap servers (`host:port,...`); set: streaming collection is published to "
        "`stream_topic` and applied by `tessera worker` processes.",
    ),
    Setting("stream_topic", str, "tessera-ingest", "Topic streaming collection publishes to."),
    Setting("stream_partitions", int, 8, "Partitions of the topic: the most workers that share the load."),
    Setting("stream_group", str, "tessera-workers", "Consumer group under which workers commit offsets."),
    Setting(
        "sandbox_lock_ttl_s",
        float,
        10.0,
        "Lifetime of a worker's per-sandbox Redis write lock (renewed while held; a dead holder's "
        "lock frees after this). Also the lifetime of the per-sandbox timer lease.",
    ),
    Setting(
        "timer_interval_s",
        float,
        1.0,
        "Seconds between a sandbox's timer rounds: closing time windows, due schedules, webhook "
        "deliveries and their retries, membership expiry.",
    ),
    Setting(
        "log_format",
        str,
        "auto",
        "Server log lines: `json` (one object per line), `text`, or `auto` (text on a terminal, else JSON).",
    ),
    Setting(
        "alert_graph_size",
        int,
        40,
        "Record a graph-health alert when an identity graph reaches this many identities (0 = off).",
    ),
    Setting(
        "alert_junk_links",
        int,
        20,
        "Record a graph-health alert when one identity links to this many others (0 = off).",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :meth:`from_env` or :meth:`with_overrides`."""

    home: str = "./tessera-data"
    host: str = "127.0.0.1"
    port: int = 8000
    group_commit_ms: float = 1.0
    graph_limit: int = 50
    store_memory_mib: int = 128
    max_identities_per_row: int = 20
    max_profile_record_bytes: int = 100_000
    max_event_bytes: int = 10_000
    max_streaming_message_bytes: int = 1_000_000
    max_streaming_batch_messages: int = 10_000
    max_json_body_bytes: int = 20_000_000
    max_upload_bytes: int = 512_000_000
    max_merge_policies: int = 5
    max_pql_length: int = 100_000
    max_pql_depth: int = 200
    max_regex_length: int = 1_000
    regex_timeout_ms: int = 50
    query_timeout_s: float = 30.0
    estimate_exact_limit: int = 1_000_000
    estimate_sample_size: int = 2_000
    rate_limit_per_s: float = 0.0
    tenant: str = "tessera"
    point_store: str = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False
    redis_namespace: str = "tessera"
    kafka_bootstrap: str = ""
    stream_topic: str = "tessera-ingest"
    stream_partitions: int = 8
    stream_group: str = "tessera-workers"
    sandbox_lock_ttl_s: float = 10.0
    timer_interval_s: float = 1.0
    log_format: str = "auto"
    alert_graph_size: int = 40
    alert_junk_links: int = 20
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def distributed(self) -> bool:
        """Whether processes share backends (Redis point store), so several may run at once."""
        return self.point_store != "sqlite"

    @classmethod
    def from_env(
        cls,
        environ: dict[str, str] | None = None,
        *,
        settings_file: str | Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults, then the settings file (``settings_file`` or ``TESSERA_SETTINGS``), then
        ``TESSERA_HOME`` / ``TESSERA__<NAME>`` variables, then ``overrides``."""
        env = dict(os.environ if environ is None else environ)
        path = settings_file or env.get("TESSERA_SETTINGS")
        values: dict[str, Any] = read_settings_file(path) if path else {}
        if "TESSERA_HOME" in env:
            values["home"] = env["TESSERA_HOME"]
        for setting in SETTINGS:
            key = f"TESSERA__{setting.name.upper()}"
            if key in env:
                values[setting.name] = _coerce(setting, env[key])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, pairs: list[str]) -> Settings:
        """Apply ``name=value`` strings (the CLI's ``--setting``)."""
        known = {s.name: s for s in SETTINGS}
        updates: dict[str, Any] = {}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            if not sep or name not in known:
                raise InvalidInput(
                    f"Unknown setting {name!r}; known settings: {', '.join(sorted(known))}", path=name
                )
            updates[name] = _coerce(known[name], raw)
        return replace(self, **updates)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML file (top-level ``name = value`` pairs of the settings table).

    Raises:
        InvalidInput: the file is missing, not TOML, names an unknown setting or has a wrong type.
    """
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read settings file {str(path)!r}: {exc.strerror}", path="settings"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"Settings file {str(path)!r} is not valid TOML: {exc}", path="settings") from exc
    known = {s.name: s for s in SETTINGS}
    values: dict[str, Any] = {}
    for name, value in doc.items():
        setting = known.get(name)
        if setting is None:
            raise InvalidInput(
                f"Unknown setting {name!r} in {str(path)!r}; known settings: {', '.join(sorted(known))}",
                path=name,
            )
        if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, setting.type) or (setting.type is int and isinstance(value, bool)):
            raise InvalidInput(
                f"Setting {name} in {str(path)!r} expects {setting.type.__name__}, got {value!r}", path=name
            )
        values[name] = value
    return values


def _coerce(setting: Setting, raw: str) -> Any:
    try:
        if setting.type is bool:
            return raw.lower() in {"1", "true", "yes", "on"}
        return setting.type(raw)
    except ValueError as exc:
        raise InvalidInput(
            f"Setting {setting.name} expects {setting.type.__name__}, got {raw!r}", path=setting.name
        ) from exc
