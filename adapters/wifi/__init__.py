"""The public Wi-Fi controllers: each new public notice pushed as a signed JSON POST
(:mod:`.client`, the status table in :mod:`.status`), and a controller to push to
(:mod:`.simulator`)."""

from adapters.wifi.client import WifiClient

__all__ = ["WifiClient"]
