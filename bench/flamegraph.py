"""A flame graph (SVG) of py-spy's collapsed stacks (:mod:`bench.profiler`).

The roots at the bottom, each frame as wide as its samples (inclusive), its callees above it;
hovering a frame shows its name, file and share (an SVG ``<title>``). Frames narrower than
:data:`MIN_WIDTH` pixels are left out (their samples stay in their caller's width). The colour
says the frame's layer: Loa's code warm, redis-py red, asyncio and uvloop blue, the rest grey.

``python -m bench.flamegraph FILE -o OUT.svg [--title TEXT]``.
"""

from __future__ import annotations

import argparse
import html
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from bench.attribution import read

WIDTH = 1600.0  # pixels
ROW = 16  # pixels per frame
MIN_WIDTH = 0.3  # narrower frames are not drawn
FONT = 11
CHAR = 6.2  # pixels per character at FONT


class Node:
    __slots__ = ("children", "name", "samples")

    def __init__(self, name: str) -> None:
        self.name = name
        self.samples = 0
        self.children: dict[str, Node] = {}


def tree(stacks: Counter[str]) -> Node:
    root = Node("all")
    for stack, n in stacks.items():
        node = root
        node.samples += n
        for frame in stack.split(";"):
            node = node.children.setdefault(frame, Node(frame))
            node.samples += n
    return root


def _colour(name: str) -> str:
    if "(redis/" in name:
        return "#e8705f"
    if "(asyncio/" in name or "(uvloop/" in name:
        return "#7fa7d9"
    if "(dispatcher/" in name or "(adapters/" in name or "(bench/" in name:
        return "#f2b35e"
    return "#c8c8c8"


def _depth(node: Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def svg(stacks: Counter[str], title: str) -> str:
    root = tree(stacks)
    total = root.samples or 1
    height = (_depth(root) + 2) * ROW
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0f}" height="{height}" '
           f'font-family="monospace" font-size="{FONT}">',
           f'<text x="4" y="{ROW - 4}">{html.escape(title)} ({total:,} samples)</text>']

    def draw(node: Node, x: float, depth: int) -> None:
        width = node.samples / total * WIDTH
        if width < MIN_WIDTH:
            return
        y = height - (depth + 1) * ROW
        share = node.samples / total
        label = node.name if depth else title
        out.append(f'<g><title>{html.escape(label)} — {node.samples:,} samples, {share:.2%}'
                   f'</title><rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{ROW - 1}" '
                   f'fill="{_colour(node.name)}"/>')
        fits = int(width // CHAR)
        if fits >= 3:
            text = label if len(label) <= fits else label[:fits - 2] + ".."
            out.append(f'<text x="{x + 2:.2f}" y="{y + ROW - 4}">{html.escape(text)}</text>')
        out.append("</g>")
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, x, depth + 1)
            x += child.samples / total * WIDTH

    draw(root, 0.0, 0)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flamegraph",
                                     description="a flame graph of py-spy's collapsed stacks")
    parser.add_argument("file", type=Path, help="py-spy --format raw output")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the SVG to write")
    parser.add_argument("--title", default="", help="the graph's title (default: the file)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    args.output.write_text(svg(read(args.file), args.title or args.file.name), encoding="utf-8")


if __name__ == "__main__":
    main()
