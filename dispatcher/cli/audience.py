"""``loa audience generate`` and ``loa audience check``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from dispatcher import audience, audiencegen
from dispatcher.cli.engine import register_import
from dispatcher.cli.output import console, print_json, progress_bar
from dispatcher.errors import InputError
from dispatcher.msisdn import load_numbering
from dispatcher.province import load_province


def register(sub: Any) -> None:
    parser = sub.add_parser("audience", help="generate and check audience files",
                            description="Audience files: CSV with the header "
                                        "msisdn,zalo,district,kind,email.")
    group = parser.add_subparsers(dest="audience_command", metavar="COMMAND", required=True)

    gen = group.add_parser(
        "generate", help="write a deterministic synthetic audience of the province",
        description="Write a synthetic audience: unique numbers with realistic carrier shares, "
                    "districts by population, ~98%% on Zalo, residents, visitors and officials. "
                    "The same --count and --seed always give the same file.")
    gen.add_argument("--count", type=int, required=True, metavar="N", help="rows to write")
    gen.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
    gen.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                     help="where to write the CSV")
    gen.add_argument("--with-errors", action="store_true",
                     help="add ~1.5%% bad rows (bad numbers, unknown districts, duplicates...)")
    _config_options(gen)
    gen.set_defaults(func=cmd_generate)

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
    _config_options(chk)
    chk.set_defaults(func=cmd_check)
    register_import(group)


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--numbering", type=Path, metavar="FILE",
                        help="numbering file (default: shipped config/numbering.toml)")
    parser.add_argument("--province", type=Path, metavar="FILE",
                        help="province file (default: shipped config/province.toml)")


def cmd_generate(args: argparse.Namespace) -> int:
    if args.count < 0:
        raise InputError("--count must be 0 or more")
    numbering, province = load_numbering(args.numbering), load_province(args.province)
    started = time.perf_counter()
    with progress_bar("generating", args.count) as update:
        written = audiencegen.generate(args.output, args.count, seed=args.seed,
                                       numbering=numbering, province=province,
                                       with_errors=args.with_errors, progress=update)
    seconds = time.perf_counter() - started
    console().print(f"wrote {written:,} rows to {args.output} in {seconds:.1f} s", markup=False)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    validator = audience.Validator(load_numbering(args.numbering), load_province(args.province))
    try:
        size = args.file.stat().st_size
    except OSError as exc:
        raise InputError(f"{args.file}: cannot read: {exc.strerror}") from None
    started = time.perf_counter()
    with progress_bar("checking", size) as update:
        report = audience.check(args.file, validator, rejects=args.rejects, progress=update)
    seconds = time.perf_counter() - started
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
        out.print(f"rejected and duplicate rows written to {args.rejects}", markup=False)
    return 0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())
