"""Configuration: `unified-events.toml`, `[env.<name>]` overrides, environment variables, CLI flags.

Precedence (lowest first): built-in defaults, the file's top level, the file's `[env.<name>]`
table (chosen by `--env` / `UE_ENV` / `ENVIRONMENT`), `UE_*` environment variables, CLI flags.
Keys are the checklist's `EventStreamConfig` fields in snake_case with the original's defaults,
plus the server's own settings. Secrets never come from the file (see `.env.example`).
Every error names the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

ENVIRONMENTS = ("development", "staging", "production")


@dataclass(frozen=True)
class RateLimitConfig:
    """Outbound token bucket per connection (original §3.9)."""

    messages_per_second: float = 1000.0
    burst_size: float = 1000.0


@dataclass(frozen=True)
class CoalescingConfig:
    """Accepted for compatibility. Writes are always coalesced (one write per connection per
    loop tick), which supersedes the original's per-topic coalescing buffers."""

    enabled: bool = False
    max_delay_ms: int = 10
    max_batch_size: int = 100


@dataclass(frozen=True)
class FanOutConfig:
    """After `batch_size` connections written in one flush, yield to the loop
    (sleeping `yield_interval_ms` when > 0)."""

    batch_size: int = 1000
    yield_interval_ms: int = 0


@dataclass(frozen=True)
class AuthConfig:
    """Stream tokens and sign-in (security/). Keys and secrets come from the environment only:
    UE_AUTH_SECRET (alias BETTER_AUTH_SECRET) signs HS256 tokens; UE_METRICS_TOKEN opens /metrics
    to a scraper; GITHUB_/GOOGLE_CLIENT_ID and _SECRET enable OAuth sign-in."""

    algorithm: str = "HS256"           # HS256 (secret), RS256 or ES256 (public key or JWKS)
    public_key_file: str = ""          # PEM public key for RS256/ES256
    jwks_file: str = ""                # or a JWKS JSON file (key chosen by the token's kid)
    allow_insecure: bool = False       # production without require_auth / TLS (a proxy does both)
    expiry_notice_s: int = 60          # token_expiring this long before a connection's token ends
    metrics_loopback: bool = False     # /metrics open to 127.0.0.1/::1 without a token
    auth_domain: str = ""              # host of the sign-in domain (return_to may point here)
    allowed_domain_patterns: tuple[str, ...] = ()  # where return_to may point: *.example.com, example.com
    login_token_ttl_s: int = 300       # stream token handed out after OAuth sign-in
    login_role: str = "subscriber"
    login_sub_topics: tuple[str, ...] = ()
    login_pub_topics: tuple[str, ...] = ()
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"
    github_user_url: str = "https://api.github.com/user"
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_user_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    public_url: str = ""               # this server's external base URL (OAuth callback); default from the request


@dataclass(frozen=True)
class TlsConfig:
    """TLS on both listeners (minimum TLS 1.2)."""

    cert_file: str = ""
    key_file: str = ""
    https_only: bool = False           # refuse to start without TLS (always so in production)
    hsts_max_age_s: int = 31_536_000


@dataclass(frozen=True)
class CorsConfig:
    allowed_origins: tuple[str, ...] = ()  # exact origins; "*" is refused in production
    allow_credentials: bool = False
    max_age_s: int = 600


@dataclass(frozen=True)
class LimitsConfig:
    """Per-client limits; each refusal is a 4xx or close code and a `refused` metric."""

    # 0 = no limit (the default: load tests and a proxy in front all come from one address);
    # the example file's [env.production.limits] sets them.
    max_connections_per_address: int = 0
    publish_per_second_per_token: float = 0.0
    publish_burst_per_token: float = 0.0
    publish_per_second_per_address: float = 0.0
    publish_burst_per_address: float = 0.0
    strict_payloads: bool = False      # enforce UnifiedEvent column types (400 naming the field)


@dataclass(frozen=True)
class QueryConfig:
    """SQL over the hot tier (POST /query, live queries over WebSocket)."""

    timeout_ms: int = 5000
    max_rows: int = 10_000
    memory_limit_mb: int = 512
    # DuckDB threads. They are started by the niced query thread and inherit its niceness, so the
    # event loop keeps the CPU: on 2 cores, 2 threads took the GROUP BY benchmark from 44 to 33 ms
    # with fan-out's p99 unchanged (bench/README.md, SQL).
    threads: int = 2
    max_waiting: int = 16  # queries queued or running before new ones get 503
    worker_nice: int = 10  # niceness of the query thread, so fan-out keeps the CPU (0 = same as the loop)
    max_live_per_connection: int = 10
    max_live_total: int = 200
    min_live_interval_ms: int = 100  # the floor for a subscription's min_interval_ms


@dataclass(frozen=True)
class ColdConfig:
    """The archiver and the Iceberg cold tier (`unified_events.cold`). Empty `catalog_uri` and
    `warehouse` mean a SQLite catalog and a local warehouse under `data_dir/cold/`."""

    enabled: bool = True              # start and supervise the archiver with `serve`
    catalog_uri: str = ""             # "" (SQLite under data_dir) | postgresql://… | http(s):// (REST)
    warehouse: str = ""               # "" (data_dir/cold/warehouse) | a directory | s3://bucket/prefix
    namespace: str = "default"
    batch_rows: int = 100_000         # flush at this many events ...
    batch_bytes: int = 64 << 20       # ... or this many bytes of log records ...
    flush_interval_s: float = 30.0    # ... or when the oldest buffered event is this old
    poll_interval_ms: int = 200       # how often to look for new log records when idle
    retention_days: int = 0           # delete cold data older than this many days; 0 keeps everything
    maintenance_interval_s: int = 3600  # compaction, snapshot expiry, orphans, retention; 0 = off
    compact_min_files: int = 8        # compact a partition holding at least this many data files
    snapshot_retention_hours: int = 24  # expire snapshots older than this (the newest few are kept)
    orphan_min_age_hours: int = 6     # unreferenced files younger than this are not orphans yet
    nice: int = 10                    # the archiver's niceness, so publishing keeps the CPU (0 = the server's)


@dataclass(frozen=True)
class Config:
    # --- EventStreamConfig (original-system.md §4), snake_case, original defaults
    hot_tier_retention_ms: int = 300_000
    max_connections: int = 10_000
    max_topics: int = 10_000
    cleanup_interval_ms: int = 60_000
    max_pending_messages: int = 100
    dedup_window_ms: int = 60_000
    topic_ttl: int = 0
    require_auth: bool = False
    token_ttl: int = 3600
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    coalescing: CoalescingConfig = field(default_factory=CoalescingConfig)
    fan_out: FanOutConfig = field(default_factory=FanOutConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    cors: CorsConfig = field(default_factory=CorsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    cold: ColdConfig = field(default_factory=ColdConfig)
    # --- the server's own settings
    environment: str = "development"
    host: str = "127.0.0.1"
    http_port: int = 8787
    ws_port: int = 8788
    data_dir: str = "./data"
    max_body_bytes: int = 1 << 20
    max_frame_bytes: int = 1 << 20
    max_batch_events: int = 1000
    max_queued_bytes: int = 1 << 20
    slow_consumer_timeout_ms: int = 10_000
    hot_tier_max_bytes: int = 256 << 20
    dedup_max_entries: int = 200_000
    drain_timeout_ms: int = 5000
    log_level: str = "info"
    # --- the durable log (python/unified_events/durable/__init__.py)
    durability: str = "fsync"
    durability_interval_ms: int = 100
    log_segment_bytes: int = 64 << 20


_DEFAULTS = Config()

_SECTIONS: dict[str, type] = {
    "rate_limit": RateLimitConfig,
    "coalescing": CoalescingConfig,
    "fan_out": FanOutConfig,
    "auth": AuthConfig,
    "tls": TlsConfig,
    "cors": CorsConfig,
    "limits": LimitsConfig,
    "query": QueryConfig,
    "cold": ColdConfig,
}

# Lower bounds for numeric keys (inclusive); keys not listed must be >= 1.
_MINIMUMS: dict[str, float] = {
    "topic_ttl": 0,
    "fan_out.yield_interval_ms": 0,
    "query.worker_nice": 0,
    "coalescing.max_delay_ms": 0,
    "http_port": 0,  # 0 = pick a free port (tests)
    "ws_port": 0,
    "hot_tier_retention_ms": 1,
    "limits.max_connections_per_address": 0,  # 0 = no limit; rates may be fractional
    "limits.publish_per_second_per_token": 0,
    "limits.publish_burst_per_token": 0,
    "limits.publish_per_second_per_address": 0,
    "limits.publish_burst_per_address": 0,
    "cold.flush_interval_s": 0.01,
    "cold.retention_days": 0,
    "cold.maintenance_interval_s": 0,
    "cold.snapshot_retention_hours": 0,
    "cold.orphan_min_age_hours": 0,
    "cold.nice": 0,
    "log_segment_bytes": 4096,
}

DURABILITY_MODES = ("fsync", "interval", "none")

DEFAULT_CONFIG_FILE = "unified-events.toml"

ENV_VARS = {
    "host": "UE_HOST",
    "http_port": "UE_HTTP_PORT",
    "ws_port": "UE_WS_PORT",
    "data_dir": "UE_DATA_DIR",
    "log_level": "UE_LOG_LEVEL",
}


def load_config(
    path: str | os.PathLike[str] | None = None,
    environment: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build a validated Config. `overrides` are CLI-level values (None values are ignored)."""
    environ = os.environ if environ is None else environ
    env_name = environment or environ.get("UE_ENV") or environ.get("ENVIRONMENT") or "development"
    if env_name not in ENVIRONMENTS:
        raise ConfigError("environment", env_name, f"one of {', '.join(ENVIRONMENTS)}")

    raw: dict[str, Any] = {}
    if path is not None:
        file_data = _read_toml(Path(path))
        env_tables = file_data.pop("env", {})
        if not isinstance(env_tables, dict):
            raise ConfigError("env", env_tables, "a table of [env.<name>] override tables")
        for name in env_tables:
            if name not in ENVIRONMENTS:
                raise ConfigError(f"env.{name}", name, f"environment names are {', '.join(ENVIRONMENTS)}")
        _merge(raw, file_data)
        _merge(raw, env_tables.get(env_name, {}))
    for key, var in ENV_VARS.items():
        if var in environ and environ[var] != "":
            raw[key] = _from_env(key, var, environ[var])
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = value
    raw["environment"] = env_name
    return _build(raw)


def resolve_config(path: str | None, environment: str | None,
                   overrides: Mapping[str, Any] | None = None) -> Config:
    """The configuration a command runs with: `path`, else $UE_CONFIG, else ./unified-events.toml
    when present, else the defaults; then the environment table, UE_* variables and `overrides`."""
    path = path or os.environ.get("UE_CONFIG") or None
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    return load_config(path, environment=environment, overrides=overrides)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("--config", str(path), "an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", str(path), f"valid TOML ({exc})") from None


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = value


def _from_env(key: str, var: str, text: str) -> Any:
    default = getattr(_DEFAULTS, key)
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key} (from {var})", text, "an integer") from None
    return text


def _build(raw: dict[str, Any]) -> Config:
    known = {f.name: f for f in dataclasses.fields(Config)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(key, value, f"unknown key; known keys: {', '.join(sorted(known))}")
        if key in _SECTIONS:
            values[key] = _build_section(key, _SECTIONS[key], value)
        else:
            values[key] = _check_value(key, value, getattr(_DEFAULTS, key))
    config = Config(**values)
    _check_cross_field(config)
    return config


def _build_section(name: str, cls: type, value: Any) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(name, value, "a table")
    known = {f.name for f in dataclasses.fields(cls)}
    defaults = cls()
    values = {}
    for key, item in value.items():
        if key not in known:
            raise ConfigError(f"{name}.{key}", item, f"unknown key; known keys: {', '.join(sorted(known))}")
        values[key] = _check_value(f"{name}.{key}", item, getattr(defaults, key))
    return cls(**values)


def _check_value(key: str, value: Any, default: Any) -> Any:
    if isinstance(default, tuple):  # a list of strings (patterns, origins)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(key, value, "a list of non-empty strings")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
        return value
    if isinstance(default, (int, float)):
        numeric = (int, float) if isinstance(default, float) else (int,)
        if isinstance(value, bool) or not isinstance(value, numeric):
            raise ConfigError(key, value, "an integer" if numeric == (int,) else "a number")
        minimum = _MINIMUMS.get(key, 1)
        if value < minimum:
            raise ConfigError(key, value, f"a number >= {minimum}")
        if key.endswith("_port") and value > 65535:
            raise ConfigError(key, value, "a port number 0-65535")
        return type(default)(value)
    if isinstance(default, str):
        if not isinstance(value, str) or (value == "" and default != ""):  # "" allowed where it is the default
            raise ConfigError(key, value, "a non-empty string")
        if key == "log_level" and value.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(key, value, "one of debug, info, warning, error")
        if key == "durability" and value not in DURABILITY_MODES:
            raise ConfigError(key, value, f"one of {', '.join(DURABILITY_MODES)}")
        return value
    return value


_CATALOG_URI_PREFIXES = ("postgresql://", "postgres://", "postgresql+", "sqlite:", "http://", "https://")


def _check_cross_field(config: Config) -> None:
    uri = config.cold.catalog_uri
    if uri and not uri.startswith(_CATALOG_URI_PREFIXES):
        raise ConfigError("cold.catalog_uri", uri, "\"\" (SQLite under data_dir), postgresql://…, "
                          "or an http(s):// REST catalog")
    if config.http_port and config.http_port == config.ws_port:
        raise ConfigError("ws_port", config.ws_port, "a port different from http_port (HTTP and WebSocket listen apart)")
    if config.max_body_bytes > config.hot_tier_max_bytes:
        raise ConfigError("max_body_bytes", config.max_body_bytes, "at most hot_tier_max_bytes")
    _check_security(config)


def _check_security(config: Config) -> None:
    """Checks that need only the file; those that need secrets run at start (security/startup.py)."""
    auth, tls = config.auth, config.tls
    if auth.algorithm not in ("HS256", "RS256", "ES256"):
        raise ConfigError("auth.algorithm", auth.algorithm, "one of HS256, RS256, ES256")
    if auth.algorithm != "HS256" and not (auth.public_key_file or auth.jwks_file) and config.require_auth:
        raise ConfigError("auth.public_key_file", "", f"a PEM public key or auth.jwks_file for {auth.algorithm}")
    if auth.login_role not in ("admin", "publisher", "subscriber"):
        raise ConfigError("auth.login_role", auth.login_role, "one of admin, publisher, subscriber")
    if bool(tls.cert_file) != bool(tls.key_file):
        raise ConfigError("tls.key_file" if tls.cert_file else "tls.cert_file", "",
                          "both tls.cert_file and tls.key_file, or neither")
    limits = config.limits
    for kind in ("token", "address"):
        rate, burst = getattr(limits, f"publish_per_second_per_{kind}"), getattr(limits, f"publish_burst_per_{kind}")
        if (rate > 0) != (burst > 0) or 0 < burst < 1:
            raise ConfigError(f"limits.publish_burst_per_{kind}", burst,
                              f"at least 1 when limits.publish_per_second_per_{kind} is set (both 0 = no limit)")
    if config.environment == "production" and "*" in config.cors.allowed_origins:
        raise ConfigError("cors.allowed_origins", list(config.cors.allowed_origins),
                          "explicit origins in production (a wildcard is refused)")
