"""``loa audience generate``: a deterministic synthetic audience of the province."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench import audiencegen
from dispatcher.domain.errors import InputError
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.province import load_province
from dispatcher.service.cli.audience import config_options
from dispatcher.service.cli.output import console, progress_bar


def register(group: Any) -> None:
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
    config_options(gen)
    gen.set_defaults(func=cmd_generate)



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
    console().print(f"wrote {written:,} rows to {args.output} in {seconds:.1f} s", markup=False,
                    soft_wrap=True)  # a path is never broken across lines
    return 0
