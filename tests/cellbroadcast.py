"""What the cell broadcast tests share: carriers of the broadcast centre simulator, every
district of the province with a shape, and the channel's settings pointing at the simulator."""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.cellbroadcast.config import Auth, Carrier, CellBroadcastConfig
from adapters.cellbroadcast.simulator import CbcSim
from dispatcher.domain.cap import AreaConfig, CapSettings
from dispatcher.domain.province import load_province

SENDER = "soyte@quangninh.gov.vn"
CAP = CapSettings(sender=SENDER, sender_name="Sở Y tế tỉnh Quảng Ninh")
#: The simulator's carriers: Viettel by HTTP Basic, VinaPhone by a Bearer token.
CREDENTIALS = {"viettel": "loa:vt-secret", "vinaphone": "vnp-token"}
CARRIERS = list(CREDENTIALS)
PROVINCE = load_province()


def areas() -> dict[str, AreaConfig]:
    """Every district a geocode, Hạ Long a polygon too (test shapes, not survey data)."""
    found = {d: AreaConfig(geocodes={"VN-TEST": f"22-{n:03d}"})
             for n, d in enumerate(sorted(PROVINCE.districts), 1)}
    found["ha-long"] = AreaConfig(
        polygons=["20.90,107.00 20.90,107.20 21.05,107.20 21.05,107.00 20.90,107.00"],
        geocodes={"VN-TEST": "22-193"})
    return found


def carriers(sim: CbcSim | str, **options: Any) -> list[Carrier]:
    """The simulator's carriers, at ``sim`` (or a simulator's base URL)."""
    base = sim if isinstance(sim, str) else sim.url
    return [Carrier(id="viettel", name="Viettel CBC", url=f"{base}/viettel/cap",
                    auth=Auth.BASIC, user="loa", password_env="VT_PASSWORD",
                    password="vt-secret", **options),
            Carrier(id="vinaphone", name="VinaPhone CBC", url=f"{base}/vinaphone/cap",
                    auth=Auth.BEARER, token_env="VNP_TOKEN", token="vnp-token", **options)]


def config(sim: CbcSim | str, **changes: Any) -> CellBroadcastConfig:
    base = CellBroadcastConfig(carriers=carriers(sim), areas=areas(), proxy="direct",
                               timeout=2.0, throttle_pause=30.0, alert_probe_seconds=0.3,
                               status_seconds=0.05, status_reads=3)
    return msgspec.structs.replace(base, **changes)
