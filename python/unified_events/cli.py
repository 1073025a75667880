"""The `unified-events` command: a parser per subcommand module (see `commands/`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from . import __version__
from .commands import COMMAND_MODULES


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f".commands.{name}", __package__) for name in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unified-events", description="Self-hosted real-time event server.")
    parser.add_argument("--version", action="version", version=f"unified-events {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in _modules():
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for module in _modules():
        if module.NAME == args.command:
            return int(module.run(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
