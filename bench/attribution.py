"""A process's CPU per message by part, from py-spy's collapsed stacks (:mod:`bench.profiler`).

Each sample is charged to one *part* of the message's way through Loa: the frame nearest the
leaf that one of :data:`PARTS`' patterns names decides (so a redis-py call made by the
completion is the completion's, a socket write made by the Zalo client is Zalo's); a sample in
no Loa frame at all is the event loop's own (uvloop's callbacks, epoll, the transports). Each
part is also split by *where* the leaf frame is: Loa's own Python (with the C it calls:
msgspec, socket writes), redis-py, asyncio, or another library. The samples are shares; the
process's CPU per message measured from ``/proc`` turns them into microseconds.

``python -m bench.attribution FILE --us-per-msg X`` prints the table (markdown).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

#: (part, pattern on a frame ``function (file:line)``), the first that matches the frame
#: nearest the leaf wins; the order only matters for a frame two patterns name.
PARTS: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(pattern)) for name, pattern in [
    ("metrics", r"prometheus_client/|dispatcher/engine/metrics\.py|adapters/metrics\.py"),
    ("lease heartbeats", r"dispatcher/engine/binds\.py|Worker\._beat|Worker\._touch"
                         r"|Worker\._reclaimer|RedisLeases\."),
    ("receipts: matching", r"dispatcher/engine/receipts\.py"),
    ("receipts: parsing", r"parse_receipt|parse_deliver_essentials|encode_deliver_sm_resp"
                          r"|EsmeSession\._hand_over|parse_tlvs"),
    ("completion", r"Worker\._complete\b|Worker\._still_ours"),
    ("sent marks", r"Worker\._persist|Worker\._write_marks|dispatcher/engine/sentmarks\.py"),
    ("dedup", r"Worker\._unsent|Worker\._unrepeated|Worker\._unsent_ids"),
    ("throttle", r"Worker\._throttle|dispatcher/engine/throttle\.py|asyncio_throttle/"),
    ("stream read", r"Worker\._consumer"),
    ("retries due", r"Worker\._mover"),
    ("fan-out", r"dispatcher/engine/fanout\.py|Engine\._fan_out"),
    ("SMS: submit", r"SmppAdapter\.|EsmeSession\.submit|SubmitTemplate\.|EsmeSession\._flush"
                    r"|adapters/smpp/pdu\.py"),
    ("SMS: answers", r"EsmeSession\._handle|parse_message_id|Framer\.|_Protocol\.data_received"
                     r"|adapters/smpp/session\.py"),
    ("Zalo: HTTP", r"ZaloAdapter\.|adapters/zalo/|adapters/http/"),
    ("batch handling", r"dispatcher/engine/worker\.py"),
]]
#: Loa's frames that every stack of the process has (the command that runs the event loop).
ROOT = re.compile(r"dispatcher/service/cli/")
OTHER_LOA = "other Loa code"
OTHER_LOA_FRAME = re.compile(r"\((dispatcher|adapters)/")
EVENT_LOOP = "event loop (no Loa frame)"
WHERE: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(pattern)) for name, pattern in [
    ("redis-py", r"\(redis/"),
    ("asyncio", r"\(asyncio/|\(uvloop/"),
    ("Loa", r"\((dispatcher|adapters|bench)/"),
]]
OTHER_LIB = "other"


def read(path: Path) -> Counter[str]:
    """The collapsed stacks of a py-spy ``--format raw`` file: stack -> samples."""
    stacks: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def part_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in PARTS:
            if pattern.search(frame):
                return name
    if any(OTHER_LOA_FRAME.search(f) and not ROOT.search(f) for f in frames):
        return OTHER_LOA
    return EVENT_LOOP


def where_of(leaf: str) -> str:
    return next((name for name, pattern in WHERE if pattern.search(leaf)), OTHER_LIB)


def attribute(stacks: Counter[str]) -> dict[str, Counter[str]]:
    """part -> (where -> samples)."""
    parts: dict[str, Counter[str]] = {}
    for stack, n in stacks.items():
        frames = stack.split(";")
        parts.setdefault(part_of(frames), Counter())[where_of(frames[-1])] += n
    return parts


def table(parts: dict[str, Counter[str]], us_per_msg: float) -> list[str]:
    """Markdown rows: each part's share of the samples and its µs per message (of
    ``us_per_msg``, the process's measured CPU per message), split by where."""
    total = sum(sum(c.values()) for c in parts.values()) or 1
    columns = [name for name, _ in WHERE] + [OTHER_LIB]
    lines = ["| Part | Share | µs per message | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    ranked = sorted(parts.items(), key=lambda item: -sum(item[1].values()))
    for name, where in ranked:
        n = sum(where.values())
        cells = [f"{where[c] / total * us_per_msg:.2f}" for c in columns]
        lines.append(f"| {name} | {n / total:.1%} | {n / total * us_per_msg:.2f} | "
                     + " | ".join(cells) + " |")
    lines.append(f"| **all** | 100% | **{us_per_msg:.2f}** | "
                 + " | ".join(f"{sum(p[c] for p in parts.values()) / total * us_per_msg:.2f}"
                              for c in columns) + " |")
    return lines


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.attribution",
                                     description="CPU per message by part, from py-spy's "
                                                 "collapsed stacks")
    parser.add_argument("file", type=Path, nargs="+", help="py-spy --format raw output(s)")
    parser.add_argument("--us-per-msg", type=float, required=True,
                        help="the process's measured CPU per message (µs)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    stacks: Counter[str] = Counter()
    for path in args.file:
        stacks.update(read(path))
    print("\n".join(table(attribute(stacks), args.us_per_msg)))


if __name__ == "__main__":
    main()
