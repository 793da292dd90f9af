"""The portal channel: posts to the provincial portal's Covid-19 section (WordPress) and to the
public-service portal (signed JSON), one per wave on each configured site."""

from adapters.portal.adapter import PortalAdapter, PortalStats
from adapters.portal.config import PortalConfig, Site

__all__ = ["PortalAdapter", "PortalConfig", "PortalStats", "Site"]
