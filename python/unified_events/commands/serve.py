"""`unified-events serve`: run one node (HTTP + WebSocket)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

import orjson

from ..config import resolve_config
from ..errors import ConfigError

NAME = "serve"


def add_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        NAME, help="run the server (HTTP + WebSocket)",
        description="Run one node. Each option can also be set by the environment variable in brackets; "
                    "flags win over variables, variables over the config file.",
    )
    add_config_arguments(serve)
    serve.add_argument("--host", help="address both listeners bind [UE_HOST] (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="HTTP port [UE_HTTP_PORT] (default 8787)")
    serve.add_argument("--ws-port", type=int, help="WebSocket port [UE_WS_PORT] (default 8788)")
    serve.add_argument("--data-dir", help="data directory [UE_DATA_DIR] (default ./data)")
    serve.add_argument("--log-level", help="debug, info, warning or error [UE_LOG_LEVEL] (default info)")
    serve.add_argument("--check", action="store_true", help="validate the configuration, print it and exit")
    serve.add_argument("--json", action="store_true", help="with --check: print the configuration as JSON")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config and --env, shared by every command that reads the configuration."""
    parser.add_argument("--config", help="TOML config file [UE_CONFIG] (default: ./unified-events.toml if present)")
    parser.add_argument("--env", help="environment whose [env.<name>] table applies [UE_ENV, ENVIRONMENT] "
                                      "(development, staging, production; default development)")


def run(args: argparse.Namespace) -> int:
    try:
        config = resolve_config(args.config, args.env, {
            "host": args.host, "http_port": args.http_port, "ws_port": args.ws_port,
            "data_dir": args.data_dir, "log_level": args.log_level,
        })
    except ConfigError as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 2
    if args.check:
        try:  # the start-up refusals too: missing secret or key, production without auth or TLS
            from ..security import check_listeners, check_startup
            from ..stream import EventStream

            check_startup(EventStream(config))
            check_listeners(config)
        except ConfigError as exc:
            print(f"unified-events: {exc}", file=sys.stderr)
            return 2
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

    from ..server.app import serve

    try:
        uvloop.run(serve(config))
    except ConfigError as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"unified-events: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
