"""``loa list upload FILE``: a list of numbers (CSV with an msisdn column, or a JSON array of
numbers) checked as an audience file and stored as its own audience version, for a campaign to
name (``loa campaign create --list ID``); ``loa list show ID``. The upload goes through the API
with a token (:mod:`dispatcher.service.cli.gate`; ``--admin-direct``: Redis directly, audited);
``show`` reads the store."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec

from dispatcher.domain import numberlist
from dispatcher.domain.audience import check
from dispatcher.domain.errors import AudienceError, InputError, TooLarge
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.province import load_province
from dispatcher.domain.textcheck import visible
from dispatcher.engine import numberlists
from dispatcher.engine.numberlists import ListReport
from dispatcher.service.cli import audience, gate, storeopts
from dispatcher.service.cli.output import console, print_json, progress_bar
from dispatcher.service.cli.runtime import run_async
from dispatcher.store import open_store
from dispatcher.store.base import AudienceMeta

UPLOAD_TIMEOUT = 900.0  # seconds: a province-sized list is checked and stored in about 30
SHOWN = 20  # rejected rows printed (--json: all the API lists)


def register(sub: Any) -> None:
    parser = sub.add_parser("list", help="upload a list of numbers for a campaign",
                            description="Lists of numbers (the people who were at a place at a "
                                        "time): upload checks a CSV (an msisdn column; zalo, "
                                        "district, kind and email optional) or a JSON array of "
                                        "numbers with the audience file's rules, stores the "
                                        "valid rows as a list of its own and prints the report "
                                        "and the list's id (loa campaign create --list ID).")
    group = parser.add_subparsers(dest="list_command", metavar="COMMAND", required=True)
    upload = group.add_parser("upload", help="check and store a list; prints its id")
    upload.add_argument("file", type=Path, metavar="FILE", help="a .csv, or a .json array")
    upload.add_argument("--name", default="", help="a name for the list (default: the file's)")
    upload.add_argument("--format", choices=numberlist.FORMATS, default=None,
                        help="csv or json (default: from the file's extension, else csv)")
    storeopts.add_record_options(upload, changes=True)
    upload.set_defaults(func=cmd_upload)
    chk = group.add_parser(
        "check", help="check a list without storing it (as loa audience check does)",
        description="Validate every row of FILE with a list's rules (an msisdn column; "
                    "district optional) and print the report of loa audience check; --rejects "
                    "writes every rejected and duplicate row with its line (JSON: its position) "
                    "and reason. Nothing is stored; exit status 0 even when rows are rejected.")
    chk.add_argument("file", type=Path, metavar="FILE", help="a .csv, or a .json array")
    chk.add_argument("--format", choices=numberlist.FORMATS, default=None,
                     help="csv or json (default: from the file's extension, else csv)")
    chk.add_argument("--rejects", type=Path, metavar="OUT.csv",
                     help="write rejected and duplicate rows here with line number and reason")
    chk.add_argument("--json", action="store_true", help="one JSON object on stdout")
    audience.config_options(chk)
    chk.set_defaults(func=cmd_check)
    show = group.add_parser("show", help="what a stored list holds (without ID: every list)")
    show.add_argument("id", metavar="ID", nargs="?", default="")
    storeopts.add_record_options(show)
    show.set_defaults(func=cmd_show)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    return numberlist.JSON if args.file.suffix.lower() == ".json" else numberlist.CSV


def check_size(path: Path) -> int:
    """The size of the list file at ``path``; TooLarge over the cap."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if size > numberlist.MAX_BYTES:
        raise TooLarge(f"{path}: {size:,} bytes, more than the {numberlist.MAX_BYTES:,} a "
                       f"list may take: split the list")
    return size


async def upload(via: gate.Api | gate.Direct, args: argparse.Namespace, path: Path, fmt: str,
                 name: str) -> ListReport:
    """The list at ``path`` checked and stored: through the API, or into Redis (audited)."""
    size = check_size(path)
    if isinstance(via, gate.Api):
        media = "application/json" if fmt == numberlist.JSON else "text/csv"
        _, answer = await gate.call(via, "POST", "/v1/lists?" + urlencode({"name": name}),
                                    raw=path.read_bytes(), content_type=media,
                                    timeout=UPLOAD_TIMEOUT)
        return msgspec.convert(answer, ListReport)
    settings, url = storeopts.settings_and_url(args, need_redis=True)
    digest = numberlists.new_digest()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    version = numberlists.list_id(digest.digest())
    store = open_store(url)
    try:
        return await gate.audited(via, "list.upload", version, numberlists.import_list(
            path, fmt, store, numberlist.validator(load_numbering(), load_province()),
            version=version, name=name, chunk_size=settings.engine.chunk_size),
            {"name": name, "format": fmt, "bytes": size})
    except AudienceError as exc:
        if exc.field != "body":
            raise
        raise AudienceError(f"{path}: {exc.reason}") from None
    finally:
        await store.aclose()


def cmd_check(args: argparse.Namespace) -> int:
    fmt = _format(args)
    size = check_size(args.file)
    rules = numberlist.validator(load_numbering(args.numbering), load_province(args.province))
    started = time.perf_counter()
    with progress_bar("checking", size) as update:
        items = numberlist.scan_json(args.file, rules) if fmt == numberlist.JSON else None
        report = check(args.file, rules, rejects=args.rejects, progress=update, items=items)
    return audience.print_report(args, report, time.perf_counter() - started)


def cmd_upload(args: argparse.Namespace) -> int:
    fmt = _format(args)
    via = gate.gate(args, "loa list upload")
    report = run_async(upload(via, args, args.file, fmt, args.name or args.file.name))
    if args.json:
        print_json(report)
        return 0
    out = console()
    out.print(f"list {report.id} ({visible(report.name)}): {report.valid:,} numbers of "
              f"{report.rows:,} rows ({report.duplicates:,} duplicates, {report.rejected:,} "
              f"rejected)", markup=False)
    if report.by_carrier:
        out.print("by carrier: " + ", ".join(f"{c} {n:,}" for c, n in report.by_carrier.items()),
                  markup=False)
    for r in report.rejects[:SHOWN]:
        out.print(f"line {r.line}: {visible(r.reason)}", markup=False)
    left = report.duplicates + report.rejected - min(len(report.rejects), SHOWN)
    if left > 0:
        out.print(f"... and {left:,} more (loa list check FILE --rejects OUT.csv lists them "
                  f"all)", markup=False)
    out.print(f"send to it: loa campaign create --list {report.id} ...", markup=False)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _, url = storeopts.settings_and_url(args, need_redis=True)

    async def go() -> list[AudienceMeta]:
        store = open_store(url)
        try:
            if not args.id:
                return await store.audiences.kept()
            return [await numberlists.list_meta(store, args.id, "ID")]
        finally:
            await store.aclose()

    metas = run_async(go())
    if args.json:
        print_json(metas if not args.id else metas[0])
        return 0
    if not metas:
        console().print("no list uploaded yet (loa list upload FILE)", markup=False)
    for meta in metas:
        zalo = sum(g.zalo for g in meta.groups)
        console().print(f"list {meta.version} ({visible(meta.source)}), uploaded "
                        f"{meta.created_at:%Y-%m-%d %H:%M} UTC: {meta.count:,} numbers, "
                        f"{zalo:,} on Zalo", markup=False)
    return 0
