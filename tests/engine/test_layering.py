"""The engine stands on its own: its settings and its retry policy load no channel, and no
module of the engine speaks to Redis but through the store (:mod:`dispatcher.store`)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DISPATCHER = ROOT / "dispatcher"

#: Libraries of the channels: the engine's settings and its retry policy need none of them.
CHANNEL_LIBRARIES = ("aiohttp", "aiosmtplib", "httpx")
#: Where Redis is spoken: the store, and the lab that starts, breaks and measures Redis.
REDIS_ALLOWED = ("dispatcher/store/", "bench/localredis.py", "bench/chaos.py",
                 "bench/enginebench.py", "bench/wavebench.py", "bench/procstat.py")


def loaded_by(*modules: str) -> list[str]:
    """The modules a fresh interpreter holds after importing ``modules``."""
    code = (f"import importlib, json, sys\nfor m in {list(modules)!r}: importlib.import_module(m)"
            "\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def test_the_engine_settings_and_the_retry_policy_load_no_channel() -> None:
    loaded = loaded_by("dispatcher.engine.retry", "dispatcher.engine.settings")
    channels = [m for m in loaded
                if m.split(".")[0] in CHANNEL_LIBRARIES
                or (m.startswith("adapters.") and m.count(".") >= 1)]
    assert channels == []


def test_the_full_settings_still_hold_every_channel() -> None:
    from dispatcher.engine.settings import EngineConfig  # noqa: PLC0415
    from dispatcher.service.settings import Settings  # noqa: PLC0415

    assert issubclass(Settings, EngineConfig)
    assert {"smpp", "zalo", "app", "email"} <= set(Settings.__struct_fields__)
    assert not {"smpp", "zalo", "app", "email"} & set(EngineConfig.__struct_fields__)


def redis_imports(path: Path) -> list[str]:
    """The ``import redis...`` and ``from redis... import`` lines of a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        found += [f"{path.relative_to(ROOT)}:{node.lineno}: {name}" for name in names
                  if name == "redis" or name.startswith("redis.")]
    return found


def test_no_module_of_the_engine_imports_redis() -> None:
    modules = [p for p in sorted(DISPATCHER.rglob("*.py"))
               if not str(p.relative_to(ROOT)).startswith(REDIS_ALLOWED)]
    assert len(modules) > 40
    assert [line for p in modules for line in redis_imports(p)] == []
