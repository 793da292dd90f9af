"""The engine stands on its own: its settings and its retry policy load no channel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Libraries of the channels: the engine's settings and its retry policy need none of them.
CHANNEL_LIBRARIES = ("aiohttp", "aiosmtplib", "httpx")


def loaded_by(*modules: str) -> list[str]:
    """The modules a fresh interpreter holds after importing ``modules``."""
    code = (f"import importlib, json, sys\nfor m in {list(modules)!r}: importlib.import_module(m)"
            "\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def test_the_engine_settings_and_the_retry_policy_load_no_channel() -> None:
    loaded = loaded_by("dispatcher.retry", "dispatcher.engine_settings")
    channels = [m for m in loaded
                if m.split(".")[0] in CHANNEL_LIBRARIES
                or (m.startswith("adapters.") and m.count(".") >= 1)]
    assert channels == []


def test_the_full_settings_still_hold_every_channel() -> None:
    from dispatcher.engine_settings import EngineConfig  # noqa: PLC0415
    from dispatcher.settings import Settings  # noqa: PLC0415

    assert issubclass(Settings, EngineConfig)
    assert {"smpp", "zalo", "app", "email"} <= set(Settings.__struct_fields__)
    assert not {"smpp", "zalo", "app", "email"} & set(EngineConfig.__struct_fields__)
