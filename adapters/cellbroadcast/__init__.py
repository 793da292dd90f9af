"""The cell broadcast channel: each wave's CAP alert to each carrier's cell broadcast centre,
which broadcasts it to every phone in the area (residents and visitors alike).

``config`` (``[cell_broadcast]``: the carriers, their credentials and options, the areas),
``codes`` (what a CBC's answers mean), ``answers`` (reading them), ``profile`` (the CAP alert and
its Cancel), ``adapter`` (:class:`CellBroadcastAdapter`), ``metrics``, ``simulator``
(:class:`CbcSim`, ``loa sim cellbroadcast``).
"""

from adapters.cellbroadcast.adapter import CellBroadcastAdapter, CellBroadcastStats
from adapters.cellbroadcast.config import Carrier, CarrierOptions, CellBroadcastConfig

__all__ = ["Carrier", "CarrierOptions", "CellBroadcastAdapter", "CellBroadcastConfig",
           "CellBroadcastStats"]
