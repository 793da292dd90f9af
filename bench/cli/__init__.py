"""The lab's commands: ``loa demo``, ``loa bench``, ``loa chaos``, ``loa sim`` and
``loa audience generate``.

They exercise and measure Loa (the demo, benchmarks, fault scenarios, protocol simulators,
synthetic audiences) and are registered by :func:`dispatcher.service.cli.build_parser` when the lab
is installed.
"""

from __future__ import annotations

from typing import Any

from bench.cli import bench, chaos, demo, generate, sim


def register(sub: Any, audience: Any) -> None:
    """Add the lab's commands to ``loa`` (``sub``) and to ``loa audience`` (``audience``)."""
    for group in (demo, bench, chaos, sim):
        group.register(sub)
    generate.register(audience)
