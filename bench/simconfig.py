"""What a ``loa worker`` needs to talk to the simulators (``loa sim smsc``, ``loa sim zalo``):
the ``[smpp.default]`` and ``[zalo]`` tables of its configuration file and the environment that
carries the Zalo app's secret and first tokens. ``loa bench``, ``loa chaos`` and the tests that
run real workers write their configuration with these."""

from __future__ import annotations

import json

from dispatcher.domain.model import Channel

SECRET_ENV = "LOA_SIM_ZALO_SECRET"  # names the simulator's app secret in the worker's env


def sim_env() -> dict[str, str]:
    """The environment variables a worker needs for the Zalo simulator's default app."""
    return {SECRET_ENV: "sim-app-secret", "LOA_ZALO_ACCESS_TOKEN": "sim-access-token",
            "LOA_ZALO_REFRESH_TOKEN": "sim-refresh-token"}


def table(name: str, fields: dict[str, str | int | float | bool]) -> str:
    """A TOML table: strings quoted, numbers and booleans as they are."""
    lines = [f"[{name}]"]
    for key, value in fields.items():
        text = json.dumps(value) if isinstance(value, str | bool) else repr(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


def simulate_table(*channels: str) -> str:
    """``[channels] simulate``: the channels a run sends to the in-process channel, declared."""
    return "[channels]\nsimulate = [" + ", ".join(f'"{c}"' for c in channels) + "]\n"


def smpp_table(port: int, system_id: str, **fields: str | int | float | bool) -> str:
    """``[smpp.default]``: every carrier through the SMSC simulator on loopback ``port``."""
    return table("smpp.default", {"host": "127.0.0.1", "port": port, "system_id": system_id,
                                  **fields})


def zalo_table(url: str, **fields: str | int | float | bool) -> str:
    """``[zalo]``: the ZNS, OA and OAuth APIs of the Zalo simulator at ``url`` (reached
    directly, whatever proxy the environment names)."""
    return table("zalo", {"base_url": url, "oa_url": url, "oauth_url": url,
                          "app_id": "sim-app", "secret_key_env": SECRET_ENV,
                          "template_id": "loa-alert", "mode": "auto", "proxy": "direct",
                          **fields})


def simulate_others(*configured: str) -> str:
    """``[channels] simulate`` naming every channel but ``configured`` (those the run gives a
    table): a plan channel left out would stop the run at start (fail closed)."""
    return simulate_table(*(c for c in Channel if c not in configured))


#: ``[channels] simulate`` naming every channel: a trial run without any carrier or outlet.
EVERY_CHANNEL_SIMULATED = simulate_table(*Channel)
