"""What each SMPP command_status means for the message that got it: one table, no conditions.

Every status an SMSC can answer maps to an :class:`Action`: sent, retry (transient), throttle
(retry, and slow the whole bind down), or fail (permanent: retrying cannot help). A status that
is not in the table (vendor-specific ranges) is a retry: bounded by the retry limit, and safer
than dropping a public alert on a code nobody documented.
"""

from __future__ import annotations

import enum


class Action(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    THROTTLE = "throttle"
    FAIL = "fail"


R, T, F = Action.RETRY, Action.THROTTLE, Action.FAIL

#: command_status -> (name, action) for submit_sm responses (SMPP 3.4, 5.1.3)
STATUSES: dict[int, tuple[str, Action]] = {
    0x00: ("ESME_ROK", Action.SENT),
    0x01: ("ESME_RINVMSGLEN", F),
    0x02: ("ESME_RINVCMDLEN", F),
    0x03: ("ESME_RINVCMDID", F),
    0x04: ("ESME_RINVBNDSTS", R),  # not bound right now: the session rebinds
    0x05: ("ESME_RALYBND", R),
    0x06: ("ESME_RINVPRTFLG", F),
    0x07: ("ESME_RINVREGDLVFLG", F),
    0x08: ("ESME_RSYSERR", R),
    0x0A: ("ESME_RINVSRCADR", F),
    0x0B: ("ESME_RINVDSTADR", F),
    0x0C: ("ESME_RINVMSGID", F),
    0x0D: ("ESME_RBINDFAIL", R),
    0x0E: ("ESME_RINVPASWD", R),
    0x0F: ("ESME_RINVSYSID", R),
    0x11: ("ESME_RCANCELFAIL", F),
    0x13: ("ESME_RREPLACEFAIL", F),
    0x14: ("ESME_RMSGQFUL", T),
    0x15: ("ESME_RINVSERTYP", F),
    0x33: ("ESME_RINVNUMDESTS", F),
    0x34: ("ESME_RINVDLNAME", F),
    0x40: ("ESME_RINVDESTFLAG", F),
    0x42: ("ESME_RINVSUBREP", F),
    0x43: ("ESME_RINVESMCLASS", F),
    0x44: ("ESME_RCNTSUBDL", F),
    0x45: ("ESME_RSUBMITFAIL", R),
    0x48: ("ESME_RINVSRCTON", F),
    0x49: ("ESME_RINVSRCNPI", F),
    0x50: ("ESME_RINVDSTTON", F),
    0x51: ("ESME_RINVDSTNPI", F),
    0x53: ("ESME_RINVSYSTYP", F),
    0x54: ("ESME_RINVREPFLAG", F),
    0x55: ("ESME_RINVNUMMSGS", F),
    0x58: ("ESME_RTHROTTLED", T),
    0x61: ("ESME_RINVSCHED", F),
    0x62: ("ESME_RINVEXPIRY", F),
    0x63: ("ESME_RINVDFTMSGID", F),
    0x64: ("ESME_RX_T_APPN", R),
    0x65: ("ESME_RX_P_APPN", F),
    0x66: ("ESME_RX_R_APPN", F),
    0x67: ("ESME_RQUERYFAIL", F),
    0xC0: ("ESME_RINVOPTPARSTREAM", F),
    0xC1: ("ESME_ROPTPARNOTALLWD", F),
    0xC2: ("ESME_RINVPARLEN", F),
    0xC3: ("ESME_RMISSINGOPTPARAM", F),
    0xC4: ("ESME_RINVOPTPARAMVAL", F),
    0xFE: ("ESME_RDELIVERYFAILURE", F),
    0xFF: ("ESME_RUNKNOWNERR", R),
}

# Permanent failures that say the destination itself cannot be sent to (not the message, not
# the configuration): the number joins the SMS suppression list.
UNREACHABLE = frozenset({0x0B})  # ESME_RINVDSTADR

# Bind failures that another attempt with the same credentials will not fix.
BIND_REFUSED_FOR_GOOD = frozenset({0x0E, 0x0F, 0x53})


def action(status: int) -> Action:
    entry = STATUSES.get(status)
    return entry[1] if entry else Action.RETRY


def describe(status: int) -> str:
    entry = STATUSES.get(status)
    name = entry[0] if entry else "vendor-specific"
    return f"{name} (0x{status:08X})"
