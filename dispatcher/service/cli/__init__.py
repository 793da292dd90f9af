"""The ``loa`` command line.

Each command group lives in its own module and registers its sub-commands with
``register(subparsers)``; every sub-command sets ``func(args) -> int`` (the exit status).
Errors Loa raises on purpose (:class:`~dispatcher.domain.errors.LoaError`) are printed as one line,
``loa: error: ...``, with the error's exit status; so is a Redis that cannot be reached or
answers an error (exit status 3). No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from dispatcher import __version__
from dispatcher.domain.errors import InputError, LoaError
from dispatcher.domain.secret import has_password
from dispatcher.engine import logs
from dispatcher.service.cli import (
    api,
    audience,
    audit,
    campaign,
    checklist,
    deadletters,
    incoming,
    level,
    lists,
    logopts,
    number,
    plan,
    recipient,
    service,
    situation,
    stop,
    suppression,
    text,
    zalo,
)
from dispatcher.store.outage import ERRORS as STORE_ERRORS

GROUPS = (plan, number, text, audience, lists, level, situation, checklist, campaign, deadletters,
          recipient, incoming, suppression, stop, service, api, audit, zalo)
#: The lab's commands (demo, bench, chaos, sim, audience generate), added when it is installed.
LAB = "bench.cli"


def _lab() -> Any:
    """The lab's command module, or None where Loa is installed without it."""
    try:
        return importlib.import_module(LAB)
    except ModuleNotFoundError as exc:
        if exc.name is None or not LAB.startswith(exc.name):
            raise
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loa",
        description=(
            "Loa: mass SMS and notification dispatcher for a provincial epidemic-response "
            "communication plan."
        ),
        epilog="Run 'loa COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"loa {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    audience_group = None
    for group in GROUPS:
        made = group.register(sub)
        if group is audience:
            audience_group = made
    lab = _lab()
    if lab is not None:
        lab.register(sub, audience_group)
    return parser


def _refuse_password_in_argv(args: argparse.Namespace) -> None:
    """A password on the command line is seen by every user of the machine (``ps``, shell
    history): a Redis URL holding one comes from the environment or a file."""
    url = getattr(args, "redis", None)
    if isinstance(url, str) and has_password(url):
        raise InputError("--redis: the URL holds a password, which `ps` shows to every user "
                         "of this machine: put the URL in LOA_REDIS_URL, or in a file named by "
                         "LOA_REDIS_URL_FILE (mode 0600), and leave --redis out")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _refuse_password_in_argv(args)
        logopts.configure(args)
        status: int = args.func(args)
    except STORE_ERRORS as exc:  # before LoaError: StoreUnavailable is one
        sys.stdout.flush()
        print(f"loa: error: Redis: {exc}", file=sys.stderr)
        return 3
    except LoaError as exc:
        sys.stdout.flush()
        print(f"loa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("loa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `loa ... | head`): nothing more to say to it.
        sys.stderr.close()
        return 0
    finally:
        logs.teardown()
    return status
