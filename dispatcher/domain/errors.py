"""The one exception tree of Loa.

Every error Loa raises on purpose derives from :class:`LoaError`. Each class says whether the
operation that failed may succeed if tried again (``retryable``) and which exit status the CLI
uses for it (``exit_code``). Protocol status codes are mapped to these classes by table in the
adapter that speaks the protocol, never by ad-hoc conditions.

    LoaError
    ├── ConfigError        a configuration or plan file is missing or wrong (names the key)
    ├── InputError         an argument or input value is wrong
    │   ├── NumberError    a phone number cannot be used (carries the reason)
    │   ├── AudienceError  an audience file cannot be read (bad header, encoding, CSV syntax)
    │   ├── TooLarge       an upload beyond its documented cap (API: 413)
    │   └── ChannelUnavailable  a campaign on a channel with no configuration (API: 422)
    ├── TextError          a message text cannot be sent as SMS (too long, empty)
    ├── StateError         the campaign or wave is not in a state that allows this
    ├── PermissionDenied   the user may not do this (approving their own campaign)
    ├── NotFound           no such campaign, wave or audience
    ├── AuditUnavailable   the audit log cannot be written: the change is refused (retryable)
    ├── ChannelError       a channel could not take a batch at all (retryable)
    ├── StoreUnavailable   the store (Redis) does not answer, restarts or loads (retryable)
    └── ServiceUnavailable the Loa API does not answer, or answers 5xx (retryable)
"""

from __future__ import annotations


class LoaError(Exception):
    """Base class of every error Loa raises on purpose."""

    retryable: bool = False
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(LoaError):
    """A configuration file is missing, unreadable or invalid.

    ``source`` is the file (or other origin) and ``key`` the dotted path of the offending value,
    when known, so an operator can go straight to it.
    """

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        where = ""
        if source and key:
            where = f"{source}: {key}: "
        elif source:
            where = f"{source}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{message}")
        self.source = source
        self.key = key
        self.reason = message


class InputError(LoaError):
    """An argument or input value given by the user is wrong.

    ``field`` is the dotted path of the value in error (``texts.sms``, ``selector.districts``),
    when there is one: the message then starts with it, and the API answers it as the problem's
    ``field``.
    """

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class NumberError(InputError):
    """A phone number that cannot be used, with the reason why."""

    exit_code = 1

    def __init__(self, number: str, reason: str) -> None:
        super().__init__(f"{number!r}: {reason}")
        self.number = number
        self.reason = reason


class AudienceError(InputError):
    """An audience file that cannot be read as a whole (as opposed to a single bad row)."""


class TooLarge(InputError):
    """An upload (a list of numbers) larger than its documented cap, in bytes or rows."""


class ChannelUnavailable(InputError):
    """A campaign names a channel that is neither configured nor declared simulated."""

    def __init__(self, message: str, *, channel: str) -> None:
        super().__init__(message)
        self.channel = channel


class TextError(LoaError):
    """A message text that cannot be sent as SMS."""

    exit_code = 2


class StateError(LoaError):
    """An operation that the current state of a campaign or wave does not allow."""

    exit_code = 2


class PermissionDenied(LoaError):
    """The user may not do this (e.g. approve a campaign they created)."""

    exit_code = 2


class NotFound(LoaError):
    """A campaign, wave or audience that does not exist."""

    exit_code = 2


class AuditUnavailable(LoaError):
    """The audit record of a change cannot be written, so the change is not made."""

    retryable = True
    exit_code = 2


class ChannelError(LoaError):
    """A channel could not take a batch at all (link down, endpoint unreachable).

    Retryable by default: the worker puts the whole batch on the retry queue.
    """

    retryable = True


class StoreUnavailable(LoaError):
    """The store went away and comes back: a connection refused or lost, a timeout, a Redis
    loading its data after a restart, a cluster electing a new master.

    Raised by the store (:mod:`dispatcher.store`) from its client's errors; the engine's loops
    wait and try again on it. The exit status is the one of every store failure.
    """

    retryable = True
    exit_code = 3


class ServiceUnavailable(LoaError):
    """The Loa API a command goes through does not answer, or fails (5xx)."""

    retryable = True
