"""``loa audience check`` (and ``import``, :mod:`dispatcher.service.cli.audience_import`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from dispatcher.domain import audience
from dispatcher.domain.errors import InputError
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.province import load_province
from dispatcher.service.cli.audience_import import register_import
from dispatcher.service.cli.output import console, print_json, progress_bar


def register(sub: Any) -> Any:
    parser = sub.add_parser("audience", help="generate and check audience files",
                            description="Audience files: CSV with the header "
                                        "msisdn,zalo,district,kind,email.")
    group = parser.add_subparsers(dest="audience_command", metavar="COMMAND", required=True)

    chk = group.add_parser(
        "check", help="validate and normalise every row, count by carrier and district",
        description="Validate every row of FILE (streamed, never loaded whole), normalise the "
                    "numbers, find duplicates, and count valid rows by carrier and district. "
                    "rows = valid + duplicates + rejected. Exit status 0 even when rows are "
                    "rejected; 2 when the file cannot be read.")
    chk.add_argument("file", type=Path, metavar="FILE", help="the audience CSV")
    chk.add_argument("--rejects", type=Path, metavar="OUT.csv",
                     help="write rejected and duplicate rows here with line number and reason")
    chk.add_argument("--json", action="store_true", help="one JSON object on stdout")
    config_options(chk)
    chk.set_defaults(func=cmd_check)
    register_import(group)
    return group


def config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--numbering", type=Path, metavar="FILE",
                        help="numbering file (default: shipped config/numbering.toml)")
    parser.add_argument("--province", type=Path, metavar="FILE",
                        help="province file (default: shipped config/province.toml)")


def cmd_check(args: argparse.Namespace) -> int:
    validator = audience.Validator(load_numbering(args.numbering), load_province(args.province))
    try:
        size = args.file.stat().st_size
    except OSError as exc:
        raise InputError(f"{args.file}: cannot read: {exc.strerror}") from None
    started = time.perf_counter()
    with progress_bar("checking", size) as update:
        report = audience.check(args.file, validator, rejects=args.rejects, progress=update)
    return print_report(args, report, time.perf_counter() - started)


def print_report(args: argparse.Namespace, report: audience.CheckReport, seconds: float) -> int:
    """The report of a check, as ``loa audience check`` prints it (``--json``, ``--rejects``)."""
    if args.json:
        print_json(report)
        return 0
    out = console()
    out.print(f"{report.rows:,} rows: {report.valid:,} valid, {report.duplicates:,} duplicates, "
              f"{report.rejected:,} rejected ({seconds:.1f} s)", markup=False)
    out.print(f"on Zalo: {report.zalo:,}; with e-mail: {report.email:,}; "
              f"kinds: {_counts(report.by_kind)}", markup=False)
    if report.ignored_columns:
        out.print(f"ignored columns: {', '.join(report.ignored_columns)}", markup=False)
    table = Table(expand=False)
    table.add_column("carrier")
    table.add_column("recipients", justify="right")
    for name, n in report.by_carrier.items():
        table.add_row(name, f"{n:,}")
    districts = Table(expand=False)
    districts.add_column("district")
    districts.add_column("recipients", justify="right")
    for name, n in report.by_district.items():
        districts.add_row(name, f"{n:,}")
    out.print(table)
    out.print(districts)
    if args.rejects is not None and (report.rejected or report.duplicates):
        out.print(f"rejected and duplicate rows written to {args.rejects}", markup=False,
                  soft_wrap=True)  # a path is never broken across lines
    return 0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())
