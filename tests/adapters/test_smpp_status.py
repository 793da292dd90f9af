"""Tests of adapters.smpp.status: the command_status table and what each code does."""

from __future__ import annotations

import pytest
from aiosmpplib import SmppCommandStatus
from hypothesis import given
from hypothesis import strategies as st

from adapters.smpp.status import BIND_REFUSED_FOR_GOOD, STATUSES, Action, action, describe

# SMPP 3.4 section 5.1.3, and what Loa does with each code of a submit_sm_resp
DOCUMENTED: dict[int, tuple[str, Action]] = {
    0x00: ("ESME_ROK", Action.SENT),
    0x01: ("ESME_RINVMSGLEN", Action.FAIL),
    0x02: ("ESME_RINVCMDLEN", Action.FAIL),
    0x03: ("ESME_RINVCMDID", Action.FAIL),
    0x04: ("ESME_RINVBNDSTS", Action.RETRY),
    0x05: ("ESME_RALYBND", Action.RETRY),
    0x06: ("ESME_RINVPRTFLG", Action.FAIL),
    0x07: ("ESME_RINVREGDLVFLG", Action.FAIL),
    0x08: ("ESME_RSYSERR", Action.RETRY),
    0x0A: ("ESME_RINVSRCADR", Action.FAIL),
    0x0B: ("ESME_RINVDSTADR", Action.FAIL),
    0x0C: ("ESME_RINVMSGID", Action.FAIL),
    0x0D: ("ESME_RBINDFAIL", Action.RETRY),
    0x0E: ("ESME_RINVPASWD", Action.RETRY),
    0x0F: ("ESME_RINVSYSID", Action.RETRY),
    0x11: ("ESME_RCANCELFAIL", Action.FAIL),
    0x13: ("ESME_RREPLACEFAIL", Action.FAIL),
    0x14: ("ESME_RMSGQFUL", Action.THROTTLE),
    0x15: ("ESME_RINVSERTYP", Action.FAIL),
    0x33: ("ESME_RINVNUMDESTS", Action.FAIL),
    0x34: ("ESME_RINVDLNAME", Action.FAIL),
    0x40: ("ESME_RINVDESTFLAG", Action.FAIL),
    0x42: ("ESME_RINVSUBREP", Action.FAIL),
    0x43: ("ESME_RINVESMCLASS", Action.FAIL),
    0x44: ("ESME_RCNTSUBDL", Action.FAIL),
    0x45: ("ESME_RSUBMITFAIL", Action.RETRY),
    0x48: ("ESME_RINVSRCTON", Action.FAIL),
    0x49: ("ESME_RINVSRCNPI", Action.FAIL),
    0x50: ("ESME_RINVDSTTON", Action.FAIL),
    0x51: ("ESME_RINVDSTNPI", Action.FAIL),
    0x53: ("ESME_RINVSYSTYP", Action.FAIL),
    0x54: ("ESME_RINVREPFLAG", Action.FAIL),
    0x55: ("ESME_RINVNUMMSGS", Action.FAIL),
    0x58: ("ESME_RTHROTTLED", Action.THROTTLE),
    0x61: ("ESME_RINVSCHED", Action.FAIL),
    0x62: ("ESME_RINVEXPIRY", Action.FAIL),
    0x63: ("ESME_RINVDFTMSGID", Action.FAIL),
    0x64: ("ESME_RX_T_APPN", Action.RETRY),
    0x65: ("ESME_RX_P_APPN", Action.FAIL),
    0x66: ("ESME_RX_R_APPN", Action.FAIL),
    0x67: ("ESME_RQUERYFAIL", Action.FAIL),
    0xC0: ("ESME_RINVOPTPARSTREAM", Action.FAIL),
    0xC1: ("ESME_ROPTPARNOTALLWD", Action.FAIL),
    0xC2: ("ESME_RINVPARLEN", Action.FAIL),
    0xC3: ("ESME_RMISSINGOPTPARAM", Action.FAIL),
    0xC4: ("ESME_RINVOPTPARAMVAL", Action.FAIL),
    0xFE: ("ESME_RDELIVERYFAILURE", Action.FAIL),
    0xFF: ("ESME_RUNKNOWNERR", Action.RETRY),
}


def test_table_is_the_documented_one() -> None:
    assert STATUSES == DOCUMENTED


@pytest.mark.parametrize(("status", "expected"),
                         sorted((code, act) for code, (_, act) in DOCUMENTED.items()))
def test_every_code_maps_to_its_action(status: int, expected: Action) -> None:
    assert action(status) is expected


def test_the_codes_that_matter_most() -> None:
    assert action(0x00) is Action.SENT
    assert action(0x58) is Action.THROTTLE  # ESME_RTHROTTLED
    assert action(0x14) is Action.THROTTLE  # ESME_RMSGQFUL
    assert action(0x0B) is Action.FAIL  # ESME_RINVDSTADR
    assert action(0x08) is Action.RETRY  # ESME_RSYSERR


@pytest.mark.parametrize("status", [0x09, 0x10, 0x400, 0x1234, 0x0400_0001, 0xFFFF_FFFF])
def test_unknown_and_vendor_codes_retry(status: int) -> None:
    assert status not in STATUSES
    assert action(status) is Action.RETRY
    assert describe(status) == f"vendor-specific (0x{status:08X})"


def test_describe_names_the_code() -> None:
    assert describe(0x58) == "ESME_RTHROTTLED (0x00000058)"
    assert describe(0x00) == "ESME_ROK (0x00000000)"
    assert describe(0x400) == "vendor-specific (0x00000400)"
    assert describe(0x1234) == "vendor-specific (0x00001234)"
    for code, (name, _) in STATUSES.items():
        assert describe(code).startswith(name + " ")


def test_no_duplicate_names() -> None:
    names = [name for name, _ in STATUSES.values()]
    assert len(names) == len(set(names))
    assert all(name.startswith("ESME_R") for name in names)


def test_names_agree_with_aiosmpplib() -> None:
    """A cross-check against an independent transcription of section 5.1.3."""
    theirs = {member.value: member.name for member in SmppCommandStatus}
    ours = {code: name for code, (name, _) in STATUSES.items()}
    assert ours == theirs


def test_bind_refusals_for_good() -> None:
    assert {STATUSES[code][0] for code in BIND_REFUSED_FOR_GOOD} == {
        "ESME_RINVPASWD", "ESME_RINVSYSID", "ESME_RINVSYSTYP"}


@given(st.integers(0, 0xFFFF_FFFF))
def test_action_and_describe_total(status: int) -> None:
    assert isinstance(action(status), Action)
    assert describe(status).endswith(f"(0x{status:08X})")
    if status not in STATUSES:
        assert action(status) is Action.RETRY
