"""Fixtures shared by tests/ and bench/: the shipped configuration, loaded once."""

from __future__ import annotations

import pytest

from dispatcher.domain.msisdn import Numbering, load_numbering
from dispatcher.domain.plan import Plan, load_plan
from dispatcher.domain.province import Province, load_province


@pytest.fixture(scope="session")
def plan() -> Plan:
    return load_plan()


@pytest.fixture(scope="session")
def numbering() -> Numbering:
    return load_numbering()


@pytest.fixture(scope="session")
def province() -> Province:
    return load_province()
