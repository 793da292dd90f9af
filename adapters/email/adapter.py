"""The e-mail channel: one message per official, over a small pool of SMTP connections.

Every address gets its own message (``To:`` that address; never a shared ``Bcc`` that a server
could leak), with the UTF-8 subject encoded by the ``email`` package (RFC 2047) and a
``text/plain; charset=utf-8`` body. The headers and body of a batch are rendered once; per
message only ``To`` and ``Message-ID`` are written. The Message-ID is derived from the wave and
the address, so a message sent again after a timeout carries the same id, and mail stores that
drop duplicate ids show it once; it is the message's remote id.

Connections are opened when first needed (implicit TLS or STARTTLS as configured, then AUTH when
a username is set), kept for ``messages_per_connection`` messages, and closed when idle longer
than ``idle_seconds``. Outcomes, by table:

    250                                      sent
    4xx reply (MAIL, RCPT or DATA)           retry
    5xx reply                                failed, "SMTP <code>: <server's text>"
    timeout or connection lost mid-message   retry (after a timeout it may have been delivered)
    cannot connect, greeting refused,
    STARTTLS or AUTH refused                 requeue: never sent, no attempt used
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import re
import socket
import time
from collections.abc import Iterator
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate

import aiosmtplib
import msgspec

from adapters.base import HALTED, Envelope, Results, halted, results_for
from dispatcher.domain.errors import ChannelError, ConfigError

DEPARTMENT = "Sở Thông tin và Truyền thông Quảng Ninh"
REASON_CHARS = 200
# what an address may be: ASCII dot-atom local part and domain (no SMTPUTF8, no header tricks)
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
                      r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


class EmailConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An SMTP submission account. ``password`` is filled in from the environment variable
    named by ``password_env`` by the settings loader; it is never written in a file."""

    host: str
    sender: str  # the envelope sender and From address
    port: int = 587
    username: str = ""  # empty: no AUTH
    password_env: str = ""
    password: str = ""
    starttls: bool = True  # require STARTTLS (never send in clear when the server lacks it)
    use_tls: bool = False  # implicit TLS (port 465); excludes starttls
    validate_certs: bool = True
    ca_file: str = ""  # a CA bundle for a server with a private certificate authority
    sender_name: str = DEPARTMENT
    reply_to: str = ""
    pool_size: int = 4  # connections, hence messages in flight
    timeout: float = 30.0  # seconds for connecting and for each SMTP command
    messages_per_connection: int = 100  # then the connection is closed and opened again
    idle_seconds: float = 30.0  # a connection idle longer is closed before it is used again
    local_hostname: str = ""  # the EHLO name; empty: this host's fully qualified name


class EmailStats(msgspec.Struct):
    messages: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    requeue: int = 0
    connections: int = 0  # opened
    possible_duplicates: int = 0  # timeouts mid-message: retried, though it may have gone out


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    REQUEUE = "requeue"


#: SMTP reply class (first digit) -> outcome of a refused message; other codes are retried
CLASSES: dict[int, Outcome] = {4: Outcome.RETRY, 5: Outcome.FAILED}


def outcome(code: int) -> Outcome:
    """What an SMTP error reply means for the message that got it."""
    return CLASSES.get(code // 100, Outcome.RETRY)


def message_id(wave: str, addr: str, domain: str) -> str:
    """The Message-ID of a wave's message to ``addr``: the same on every attempt."""
    digest = hashlib.sha256(f"{wave}\0{addr.lower()}".encode()).hexdigest()[:32]
    return f"<{digest}.loa@{domain}>"


def valid_address(addr: str) -> bool:
    return len(addr) <= 254 and _ADDRESS.fullmatch(addr) is not None


class _Connection:
    """One SMTP connection of the pool, used by one message at a time."""

    def __init__(self) -> None:
        self.smtp: aiosmtplib.SMTP | None = None
        self.messages = 0
        self.used_at = 0.0


class _Down(Exception):
    """The server cannot be reached or refused the session (not a message)."""


class EmailAdapter:
    """The e-mail channel over SMTP (see :class:`EmailConfig` and the module's documentation)."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = _checked(config)
        self.stats = EmailStats()
        self.domain = config.sender.rpartition("@")[2]
        self._connections = [_Connection() for _ in range(config.pool_size)]
        self._pool: asyncio.Queue[_Connection] = asyncio.Queue()
        for connection in self._connections:
            self._pool.put_nowait(connection)
        self._helo = config.local_hostname
        self._closed = False

    # -- sending -----------------------------------------------------------------------------

    async def send(self, envelope: Envelope) -> Results:
        if self._closed:
            raise ChannelError("e-mail channel is closed")
        addrs = envelope.addrs
        results = results_for(envelope)  # sent: told as the server takes each message
        body = self._render(envelope)
        todo: Iterator[int] = iter(range(len(addrs)))
        down: list[str] = []  # why the server cannot be used, once a message found out

        async def run() -> None:
            for i in todo:
                addr = addrs[i]
                if down:
                    results.requeue.append((i, down[0]))
                    continue
                if not valid_address(addr):
                    results.failed.append((i, "not a valid e-mail address"))
                    continue
                mid = message_id(envelope.wave, addr, self.domain)
                data = b"".join((b"To: ", addr.encode(), b"\r\nMessage-ID: ", mid.encode(),
                                 b"\r\n", body))
                connection = await self._pool.get()
                if halted(envelope):
                    self._pool.put_nowait(connection)
                    results.requeue.append((i, HALTED))
                    continue
                try:
                    out, reason = await self._deliver(connection, addr, data, down)
                finally:
                    self._pool.put_nowait(connection)
                if out is Outcome.SENT:
                    results.sent.append(i)
                    results.remote_ids.append(mid)
                elif out is Outcome.RETRY:
                    results.retry.append((i, reason))
                elif out is Outcome.FAILED:
                    results.failed.append((i, reason))
                else:
                    results.requeue.append((i, reason))

        await asyncio.gather(*(run() for _ in range(min(len(addrs), self.config.pool_size))))
        stats = self.stats
        stats.messages += len(addrs)
        stats.sent += len(results.sent)
        stats.retry += len(results.retry)
        stats.failed += len(results.failed)
        stats.requeue += len(results.requeue)
        return results

    def _render(self, envelope: Envelope) -> bytes:
        """The headers (but ``To`` and ``Message-ID``) and the body of every message."""
        config = self.config
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = Address(display_name=config.sender_name, addr_spec=config.sender)
        if config.reply_to:
            message["Reply-To"] = config.reply_to
        message["Date"] = formatdate(localtime=True)
        message["X-Loa-Wave"] = _one_line(envelope.wave)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
        message.set_content(envelope.text, charset="utf-8")
        subject = _one_line(envelope.subject) or _first_line(envelope.text)
        return _subject_line(subject) + message.as_bytes()

    async def _deliver(self, connection: _Connection, addr: str, data: bytes,
                       down: list[str]) -> tuple[Outcome, str]:
        try:
            smtp = await self._connected(connection)
        except _Down as exc:
            if not down:
                down.append(str(exc))
            return Outcome.REQUEUE, str(exc)
        try:
            await smtp.sendmail(self.config.sender, [addr], data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            return outcome(refused.code), _reply(refused.code, refused.message)
        except aiosmtplib.SMTPResponseException as exc:  # MAIL or DATA refused
            if not smtp.is_connected:  # 421: the server closed the session
                connection.smtp = None
            return outcome(exc.code), _reply(exc.code, exc.message)
        except aiosmtplib.SMTPTimeoutError:
            self._drop(connection)
            self.stats.possible_duplicates += 1
            return Outcome.RETRY, (f"no answer in {self.config.timeout:g} s "
                                   "(it may have been delivered)")
        except (aiosmtplib.SMTPException, OSError) as exc:  # disconnected mid-message
            self._drop(connection)
            return Outcome.RETRY, f"connection lost ({type(exc).__name__}) during the message"
        except ValueError:  # an address aiosmtplib refuses to put on a command line
            return Outcome.FAILED, "not a valid e-mail address"
        connection.messages += 1
        connection.used_at = time.monotonic()
        if connection.messages >= self.config.messages_per_connection:
            await self._quit(connection)
        return Outcome.SENT, ""

    async def _connected(self, connection: _Connection) -> aiosmtplib.SMTP:
        """The connection's session, opened (TLS, AUTH) if it is not open or idle too long."""
        smtp = connection.smtp
        if smtp is not None and smtp.is_connected:
            if time.monotonic() - connection.used_at <= self.config.idle_seconds:
                return smtp
            await self._quit(connection)
        config = self.config
        if not self._helo:
            self._helo = await asyncio.to_thread(socket.getfqdn)
        smtp = aiosmtplib.SMTP(
            hostname=config.host, port=config.port, username=config.username or None,
            password=config.password if config.username else None,
            local_hostname=self._helo, timeout=config.timeout, use_tls=config.use_tls,
            start_tls=config.starttls if not config.use_tls else False,
            validate_certs=config.validate_certs, cert_bundle=config.ca_file or None)
        where = f"{config.host}:{config.port}"
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise _Down(f"SMTP login refused by {where}: "
                        f"{_reply(exc.code, exc.message)}") from exc
        except aiosmtplib.SMTPResponseException as exc:  # greeting, EHLO or STARTTLS refused
            raise _Down(f"SMTP session refused by {where}: "
                        f"{_reply(exc.code, exc.message)}") from exc
        except aiosmtplib.SMTPConnectTimeoutError as exc:
            raise _Down(f"cannot connect to {where}: timed out") from exc
        except aiosmtplib.SMTPConnectError as exc:
            cause = exc.__cause__
            why = (cause.strerror if isinstance(cause, OSError) and cause.strerror
                   else "connection closed")
            raise _Down(f"cannot connect to {where}: {why}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:  # no STARTTLS or AUTH, a TLS error
            raise _Down(f"cannot open an SMTP session with {where}: "
                        f"{_short(str(exc)) or type(exc).__name__}") from exc
        self.stats.connections += 1
        connection.smtp = smtp
        connection.messages = 0
        connection.used_at = time.monotonic()
        return smtp

    async def _quit(self, connection: _Connection) -> None:
        smtp, connection.smtp = connection.smtp, None
        if smtp is not None and smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await asyncio.wait_for(smtp.quit(), min(self.config.timeout, 5.0))
            smtp.close()

    @staticmethod
    def _drop(connection: _Connection) -> None:
        smtp, connection.smtp = connection.smtp, None
        if smtp is not None:
            smtp.close()

    async def aclose(self) -> None:
        self._closed = True
        for connection in self._connections:
            await self._quit(connection)


def _subject_line(subject: str) -> bytes:
    """The ``Subject`` header, RFC 2047 encoded and folded by ``email.header``: the policy's own
    folding of a long UTF-8 subject drops the space where it splits two encoded words (one
    Vietnamese subject in eight or so would read "2021 —Cấp độ")."""
    encoded = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
    return b"Subject: " + encoded.encode("ascii") + b"\r\n"


def _reply(code: int, message: str) -> str:
    return f"SMTP {code}: {_short(message)}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def _one_line(text: str) -> str:
    """A header value: a line break in it would end the header (or start another one)."""
    return " ".join(text.split())


def _first_line(text: str) -> str:
    """The subject of a message that has none: the start of its first line."""
    line = _one_line(text.strip().split("\n", 1)[0])
    return line if len(line) <= 78 else line[:77] + "…"


def _checked(config: EmailConfig) -> EmailConfig:
    if config.starttls and config.use_tls:
        raise ConfigError("starttls and use_tls exclude each other (use_tls: port 465)",
                          key="use_tls")
    if not valid_address(config.sender):
        raise ConfigError("must be an e-mail address", key="sender")
    for key, value in (("port", config.port), ("pool_size", config.pool_size),
                       ("timeout", config.timeout),
                       ("messages_per_connection", config.messages_per_connection),
                       ("idle_seconds", config.idle_seconds)):
        if value <= 0:
            raise ConfigError("must be more than 0", key=key)
    return config
