"""The `unified-events` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from . import __version__
from .config import Config, load_config
from .errors import ConfigError

DEFAULT_CONFIG_FILE = "unified-events.toml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unified-events", description="Self-hosted real-time event server.")
    parser.add_argument("--version", action="version", version=f"unified-events {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the server (HTTP + WebSocket)",
        description="Run one node. Each option can also be set by the environment variable in brackets; "
                    "flags win over variables, variables over the config file.",
    )
    serve.add_argument("--config", help=f"TOML config file [UE_CONFIG] (default: ./{DEFAULT_CONFIG_FILE} if present)")
    serve.add_argument("--env", help="environment whose [env.<name>] table applies [UE_ENV, ENVIRONMENT] "
                                     "(development, staging, production; default development)")
    serve.add_argument("--host", help="address both listeners bind [UE_HOST] (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="HTTP port [UE_HTTP_PORT] (default 8787)")
    serve.add_argument("--ws-port", type=int, help="WebSocket port [UE_WS_PORT] (default 8788)")
    serve.add_argument("--data-dir", help="data directory [UE_DATA_DIR] (default ./data)")
    serve.add_argument("--log-level", help="debug, info, warning or error [UE_LOG_LEVEL] (default info)")
    serve.add_argument("--check", action="store_true", help="validate the configuration, print it and exit")
    serve.add_argument("--json", action="store_true", help="with --check: print the configuration as JSON")
    return parser


def resolve_config(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("UE_CONFIG") or None
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    overrides: dict[str, Any] = {
        "host": args.host, "http_port": args.http_port, "ws_port": args.ws_port,
        "data_dir": args.data_dir, "log_level": args.log_level,
    }
    return load_config(path, environment=args.env, overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2


def _serve(args: argparse.Namespace) -> int:
    try:
        config = resolve_config(args)
    except ConfigError as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 2
    if args.check:
        import dataclasses

        data = dataclasses.asdict(config)
        if args.json:
            print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        else:
            for key, value in data.items():
                print(f"{key} = {value!r}")
        return 0
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    # picows logs every connect and disconnect at INFO: far too loud with thousands of clients.
    logging.getLogger("picows").setLevel(max(logging.WARNING, logging.getLogger().level))
    import uvloop

    from .server.app import serve

    try:
        uvloop.run(serve(config))
    except ConfigError as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"unified-events: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
