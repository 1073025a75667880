"""`unified-events token create`: sign a stream token (JWT) for a client.

HS256 tokens are signed with UE_AUTH_SECRET (or BETTER_AUTH_SECRET) from the environment;
RS256/ES256 tokens with `--private-key FILE` (the server holds only the public key).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import orjson

from ..security.tokens import ALGORITHMS, ROLES, SECRET_VARS, create_token, dumps_claims

NAME = "token"
_DURATION = re.compile(r"^([0-9]+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parser(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser(NAME, help="create stream tokens (JWT)")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="print a signed stream token",
                                description="Sign a token with UE_AUTH_SECRET (HS256) or --private-key (RS256/ES256).")
    create.add_argument("--sub", required=True, help="subject: who holds the token")
    create.add_argument("--role", choices=ROLES, default="subscriber")
    create.add_argument("--sub-topics", nargs="*", default=None, metavar="PATTERN",
                        help="topic patterns the holder may subscribe to (comma or space separated)")
    create.add_argument("--pub-topics", nargs="*", default=None, metavar="PATTERN",
                        help="topic patterns the holder may publish to")
    create.add_argument("--ttl", default="1h", help="lifetime: 3600, 90s, 30m, 1h, 7d (default 1h)")
    create.add_argument("--algorithm", choices=ALGORITHMS, default="HS256")
    create.add_argument("--private-key", help="PEM private key file (RS256/ES256)")
    create.add_argument("--kid", help="key id header (for a JWKS with several keys)")
    create.add_argument("--json", action="store_true", help="print {token, claims} as JSON")


def run(args: argparse.Namespace) -> int:
    ttl = parse_duration(args.ttl)
    if ttl is None:
        return _fail(f"--ttl {args.ttl!r}: a duration such as 3600, 90s, 30m, 1h or 7d")
    if args.algorithm == "HS256":
        key = next((os.environ[v] for v in SECRET_VARS if os.environ.get(v)), None)
        if key is None:
            return _fail("UE_AUTH_SECRET (or BETTER_AUTH_SECRET) is not set in the environment")
    else:
        if not args.private_key:
            return _fail(f"--private-key is required for {args.algorithm}")
        try:
            key = Path(args.private_key).read_text()
        except OSError as exc:
            return _fail(f"--private-key {args.private_key}: {exc}")
    try:
        token = create_token(key, sub=args.sub, role=args.role, sub_topics=_split(args.sub_topics),
                             pub_topics=_split(args.pub_topics), ttl_s=ttl, algorithm=args.algorithm, kid=args.kid)
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    if args.json:
        print(orjson.dumps({"token": token, "claims": orjson.loads(dumps_claims(token))}).decode())
    else:
        print(token)
    return 0


def parse_duration(text: str) -> int | None:
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [p for v in values for p in v.split(",") if p]


def _fail(message: str) -> int:
    print(f"unified-events token: {message}", file=sys.stderr)
    return 2
