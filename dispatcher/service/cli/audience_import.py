"""``loa audience import``: an audience file into the store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import InputError
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.province import load_province
from dispatcher.engine.importer import import_audience
from dispatcher.service.cli import storeopts
from dispatcher.service.cli.output import console, print_json, progress_bar
from dispatcher.service.cli.runtime import run_async
from dispatcher.store import open_store


def register_import(audience_group: Any) -> None:
    imp = audience_group.add_parser(
        "import", help="check an audience file and store it as the current audience",
        description="Check FILE, give every valid unique recipient a dense id, and store the "
                    "audience in chunks by district and kind. Importing the same file again is "
                    "a no-op; a changed file replaces the audience atomically (running waves "
                    "keep the version they started with).")
    imp.add_argument("file", type=Path, metavar="FILE", help="the audience CSV")
    imp.add_argument("--json", action="store_true", help="one JSON object on stdout")
    storeopts.add_options(imp, need_redis=True)
    imp.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    settings, url = storeopts.settings_and_url(args, need_redis=True)
    validator = Validator(load_numbering(), load_province())
    try:
        size = args.file.stat().st_size
    except OSError as exc:
        raise InputError(f"{args.file}: cannot read: {exc.strerror}") from None

    async def go() -> Any:
        store = open_store(url)
        try:
            with progress_bar("importing", size) as update:
                return await import_audience(args.file, store, validator,
                                             chunk_size=settings.engine.chunk_size,
                                             progress=update)
        finally:
            await store.aclose()

    result = run_async(go())
    if args.json:
        print_json(result)
    elif result.already_current:
        console().print(f"audience {result.version} is already current "
                        f"({result.recipients:,} recipients)", markup=False)
    else:
        r = result.report
        console().print(f"audience {result.version}: {result.recipients:,} recipients in "
                        f"{result.chunks:,} chunks ({r.duplicates:,} duplicates and "
                        f"{r.rejected:,} rejected rows left out)", markup=False)
    return 0


