"""``loa audit verify``: walk the audit log's hash chain and name the first line that breaks it."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.service.api.config import ApiConfig
from dispatcher.service.audit import verify
from dispatcher.service.cli.output import print_json


def register(sub: Any) -> None:
    parser = sub.add_parser("audit", help="the audit log: verify its hash chain",
                            description="The audit log of the API (JSON lines, hash-chained).")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    check = verbs.add_parser(
        "verify", help="check that no line was changed, removed or moved",
        description="Walk the audit log and check that every line carries the hash of the line "
                    "before it. Prints `OK: N records in FILE, head HASH` (exit 0; keep the head "
                    "elsewhere: a later head that does not follow from it shows the end was cut) "
                    "or the first line that breaks the chain (exit 1).")
    where = check.add_mutually_exclusive_group(required=True)
    where.add_argument("file", nargs="?", type=Path, help="the audit log file")
    where.add_argument("--config", type=Path, metavar="FILE",
                       help="the deployment file: its [api] audit_log")
    check.add_argument("--json", action="store_true", help="one JSON object on stdout")
    check.set_defaults(func=cmd_verify)


def audit_path(config: Path) -> Path:
    """The ``[api] audit_log`` of the deployment file ``config`` (its default if unset)."""
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read it ({exc.strerror or exc})", source=str(config)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML ({exc})", source=str(config)) from None
    api = data.get("api", {})
    value = api.get("audit_log", ApiConfig().audit_log) if isinstance(api, dict) else None
    if not isinstance(value, str) or not value:
        raise ConfigError("must be a file name", source=str(config), key="api.audit_log")
    return Path(value)


def cmd_verify(args: argparse.Namespace) -> int:
    path: Path = args.file if args.file is not None else audit_path(args.config)
    try:
        found = verify(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the audit log ({exc.strerror or exc})") from None
    if args.json:
        print_json({"file": str(path), "ok": found.broken == 0, "records": found.count,
                    "head": found.head, "broken_line": found.broken or None,
                    "reason": found.reason or None})
    if found.broken:
        sys.stdout.flush()
        print(f"loa: error: {path}: line {found.broken}: {found.reason}", file=sys.stderr)
        return 1
    if not args.json:
        print(f"OK: {found.count} records in {path}, head {found.head}")
    return 0
