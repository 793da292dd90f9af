"""The Facebook channel: posts to the province's, the departments' and the districts' pages.

``codes`` (the Graph API's error codes and what each calls for), ``api`` (wire shapes),
``config`` (``[facebook]``: the pages and their tokens), ``adapter`` (:class:`FacebookAdapter`),
``simulator`` (:class:`FacebookSim`, ``loa sim facebook``).
"""

from adapters.facebook.adapter import FacebookAdapter, FacebookStats
from adapters.facebook.config import FacebookConfig, Page

__all__ = ["FacebookAdapter", "FacebookConfig", "FacebookStats", "Page"]
