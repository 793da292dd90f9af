"""The e-mail channel against a real SMTP server (aiosmtpd) that records what it received:
Vietnamese subject and body intact, one message per address, the reply-code table, AUTH, a server
that is down or drops the connection, and a pool that reuses its connections."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, LoginPassword, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from adapters.base import Envelope, Progress
from adapters.email import EmailAdapter, EmailConfig
from adapters.email.adapter import DEPARTMENT, message_id, outcome, valid_address
from bench.localredis import free_port
from dispatcher.domain.errors import ChannelError, ConfigError
from dispatcher.domain.model import Channel

SUBJECT = "Thông báo khẩn: cấp độ dịch 4 tại thành phố Hạ Long"
TEXT = ("Kính gửi các đồng chí,\n\nTừ 0 giờ ngày mai, thành phố Hạ Long áp dụng cấp độ dịch 4. "
        "Đề nghị các cơ quan, đơn vị triển khai ngay phương án làm việc trực tuyến.\n\n"
        "Sở Thông tin và Truyền thông Quảng Ninh")
USER, PASSWORD = "loa", "mật-khẩu-đúng"


class Recorder:
    """An aiosmtpd handler that keeps every message and refuses the recipients it is told to."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, str, list[str], bytes]] = []  # peer, from, to, content
        self.connections: set[Any] = set()  # client (host, port) of every EHLO
        self.refuse: dict[str, str] = {}  # recipient -> the reply to its RCPT
        self.drop: set[str] = set()  # recipients whose DATA makes the server hang up

    async def handle_EHLO(self, server: SmtpServer, session: Session, envelope: SmtpEnvelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.connections.add(session.peer)
        return responses

    async def handle_RCPT(self, server: SmtpServer, session: Session, envelope: SmtpEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SmtpServer, session: Session,
                          envelope: SmtpEnvelope) -> str:
        if self.drop.intersection(envelope.rcpt_tos):
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        content = envelope.content
        assert isinstance(content, bytes) and isinstance(envelope.mail_from, str)
        self.messages.append((session.peer, envelope.mail_from, list(envelope.rcpt_tos),
                              content))
        return "250 Message accepted for delivery"

    @property
    def per_connection(self) -> Counter[Any]:
        return Counter(peer for peer, *_ in self.messages)


def authenticator(server: SmtpServer, session: Session, envelope: SmtpEnvelope,
                  mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(), auth_data.password.decode()) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False)


class Server:
    def __init__(self, auth: bool = False) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        self.auth = auth
        self.controller: Controller | None = None

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.auth:
            kwargs = {"authenticator": authenticator, "auth_require_tls": False,
                      "auth_required": True}
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port,
                                     ready_timeout=5.0, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def adapters() -> AsyncIterator[list[EmailAdapter]]:
    made: list[EmailAdapter] = []
    yield made
    for adapter in made:
        await adapter.aclose()


def adapter_for(made: list[EmailAdapter], port: int, **kw: Any) -> EmailAdapter:
    config = EmailConfig(host="127.0.0.1", port=port, sender="loa@stttt.quangninh.gov.vn",
                         starttls=False, timeout=5.0, local_hostname="loa.test")
    made.append(EmailAdapter(msgspec.structs.replace(config, **kw)))
    return made[-1]


def officials(n: int, domain: str = "quangninh.gov.vn") -> list[str]:
    return [f"canbo{k}@{domain}" for k in range(n)]


def envelope(addrs: list[str], wave: str = "w-mail-1") -> Envelope:
    return Envelope(wave=wave, channel=Channel.EMAIL, text=TEXT, subject=SUBJECT, addrs=addrs,
                    route="email")


async def test_vietnamese_arrives_intact_one_message_per_address(
        server: Server, adapters: list[EmailAdapter]) -> None:
    adapter = adapter_for(adapters, server.port)
    addrs = officials(3)
    results = await adapter.send(envelope(addrs))
    assert sorted(results.sent) == [0, 1, 2] and not results.receipts
    assert not (results.retry or results.failed or results.requeue)
    received = server.recorder.messages
    assert len(received) == 3
    by_to: dict[str, email.message.EmailMessage] = {}
    for _, mail_from, rcpts, content in received:
        assert mail_from == "loa@stttt.quangninh.gov.vn" and len(rcpts) == 1
        assert content.isascii()  # RFC 2047 subject, encoded body: no 8-bit on the wire
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        assert message["To"] == rcpts[0]
        assert message["Cc"] is None and message["Bcc"] is None
        by_to[rcpts[0]] = message
    assert sorted(by_to) == sorted(addrs)
    for k, i in enumerate(results.sent):
        message = by_to[addrs[i]]
        assert message["Subject"] == SUBJECT
        assert message["From"].addresses[0].display_name == DEPARTMENT
        assert message["From"].addresses[0].addr_spec == "loa@stttt.quangninh.gov.vn"
        assert message["X-Loa-Wave"] == "w-mail-1"
        assert message["Message-ID"] == results.remote_ids[k]
        assert message.get_content_type() == "text/plain"
        assert message.get_content_charset() == "utf-8"
        body = message.get_content().replace("\r\n", "\n")  # canonical CRLF lines in base64
        assert body.rstrip("\n") == TEXT


async def test_a_long_vietnamese_subject_keeps_every_space(
        server: Server, adapters: list[EmailAdapter]) -> None:
    # folded into encoded words, a subject used to lose the space at the fold
    subjects = ["Việc cần làm Thứ Hai 26/07/2021 — Cấp độ II (cấp 2): 1 việc",
                "[Cấp độ IV - KHẨN] Yêu cầu bắt buộc phòng, chống dịch Covid-19 " * 3,
                "Thông báo khẩn " * 12]
    adapter = adapter_for(adapters, server.port)
    for n, subject in enumerate(subjects):
        await adapter.send(Envelope(wave=f"w-{n}", channel=Channel.EMAIL, text=TEXT,
                                    subject=subject, addrs=officials(1)))
    got = [email.message_from_bytes(content, policy=email.policy.default)
           for *_, content in server.recorder.messages]
    assert [m["Subject"] for m in got] == [" ".join(s.split()) for s in subjects]
    assert all(content.isascii() for *_, content in server.recorder.messages)
    assert all(len(line) <= 78 for *_, content in server.recorder.messages
               for line in content.split(b"\r\n"))


async def test_subject_is_one_line_or_the_start_of_the_text(
        server: Server, adapters: list[EmailAdapter]) -> None:
    adapter = adapter_for(adapters, server.port)
    for subject in ("Khẩn\r\nBcc: all@quangninh.gov.vn", ""):
        sent = await adapter.send(Envelope(wave="w-3", channel=Channel.EMAIL, text=TEXT,
                                           subject=subject, addrs=officials(1)))
        assert sent.sent == [0]
    subjects = [email.message_from_bytes(content, policy=email.policy.default)["Subject"]
                for *_, content in server.recorder.messages]
    assert subjects == ["Khẩn Bcc: all@quangninh.gov.vn", "Kính gửi các đồng chí,"]
    assert all(len(rcpts) == 1 for _, _, rcpts, _ in server.recorder.messages)


def test_message_id_is_stable_per_wave_and_address() -> None:
    one = message_id("w-1", "a@x.vn", "x.vn")
    assert one == message_id("w-1", "A@x.vn", "x.vn") and one.endswith("@x.vn>")
    assert one != message_id("w-2", "a@x.vn", "x.vn") != message_id("w-1", "b@x.vn", "x.vn")
    assert [outcome(c).value for c in (421, 450, 451, 452, 550, 552, 554)] == [
        "retry", "retry", "retry", "retry", "failed", "failed", "failed"]
    assert valid_address("nguyen.van.a@quangninh.gov.vn")
    assert not any(valid_address(a) for a in (
        "", "a", "a@", "@b.vn", "a b@c.vn", "a@b.vn\r\nBcc: x@y.vn", "a@b.vn,c@d.vn",
        "Ng <a@b.vn>", "tên@b.vn"))


async def test_4xx_retries_5xx_fails_with_the_servers_reply(
        server: Server, adapters: list[EmailAdapter]) -> None:
    addrs = officials(5)
    server.recorder.refuse = {addrs[1]: "450 4.2.1 Mailbox busy, try later",
                              addrs[3]: "550 5.1.1 User unknown"}
    adapter = adapter_for(adapters, server.port, pool_size=2)
    progress = Progress()  # told of each message the server took, as it takes it
    results = await adapter.send(msgspec.structs.replace(envelope([*addrs, "not an address"]),
                                                         progress=progress))
    assert sorted(results.sent) == [0, 2, 4] and progress.sent == results.sent
    assert results.retry == [(1, "SMTP 450: 4.2.1 Mailbox busy, try later")]
    assert sorted(results.failed) == [(3, "SMTP 550: 5.1.1 User unknown"),
                                      (5, "not a valid e-mail address")]
    assert len(server.recorder.messages) == 3
    assert adapter.stats.connections <= 2  # a refused recipient does not cost the connection


async def test_pool_reuses_connections(server: Server, adapters: list[EmailAdapter]) -> None:
    adapter = adapter_for(adapters, server.port, pool_size=4)
    first, second = await asyncio.gather(adapter.send(envelope(officials(25))),
                                         adapter.send(envelope(officials(25, "halong.gov.vn"))))
    assert len(first.sent) + len(second.sent) == 50
    recorder = server.recorder
    assert len(recorder.messages) == 50
    assert len(recorder.connections) <= 4 and adapter.stats.connections <= 4
    third = await adapter.send(envelope(officials(10), wave="w-mail-2"))
    assert len(third.sent) == 10 and len(recorder.connections) <= 4


async def test_connection_is_renewed_after_its_message_limit(
        server: Server, adapters: list[EmailAdapter]) -> None:
    adapter = adapter_for(adapters, server.port, pool_size=2, messages_per_connection=10)
    results = await adapter.send(envelope(officials(50)))
    assert len(results.sent) == 50
    per_connection = server.recorder.per_connection
    assert max(per_connection.values()) <= 10 and len(per_connection) >= 5


async def test_server_down_requeues_everything(adapters: list[EmailAdapter]) -> None:
    adapter = adapter_for(adapters, free_port(), pool_size=3)
    results = await adapter.send(envelope(officials(20)))
    assert sorted(i for i, _ in results.requeue) == list(range(20))
    assert not (results.sent or results.retry or results.failed)
    assert all(r.startswith("cannot connect to 127.0.0.1:") for _, r in results.requeue)


async def test_server_gone_between_batches_then_back(adapters: list[EmailAdapter]) -> None:
    first = Server()
    first.start()
    adapter = adapter_for(adapters, first.port, pool_size=2)
    try:
        assert len((await adapter.send(envelope(officials(4)))).sent) == 4
    finally:
        first.stop()
    await asyncio.sleep(0.05)  # the pooled connections see the server close them
    down = await adapter.send(envelope(officials(6), wave="w-mail-2"))
    assert sorted(i for i, _ in down.requeue) == list(range(6))
    back = Server()
    back.port = first.port
    back.start()
    try:
        again = await adapter.send(envelope(officials(6), wave="w-mail-2"))
        assert sorted(again.sent) == list(range(6)) and len(back.recorder.messages) == 6
    finally:
        back.stop()


async def test_hang_up_mid_message_retries_it_and_goes_on(
        server: Server, adapters: list[EmailAdapter]) -> None:
    addrs = officials(6)
    server.recorder.drop = {addrs[2]}
    adapter = adapter_for(adapters, server.port, pool_size=1)
    results = await adapter.send(envelope(addrs))
    assert [i for i, _ in results.retry] == [2] and "connection lost" in results.retry[0][1]
    assert sorted(results.sent) == [0, 1, 3, 4, 5] and not results.requeue
    assert adapter.stats.connections == 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_authenticated_session(adapters: list[EmailAdapter]) -> None:
    secured = Server(auth=True)
    secured.start()
    try:
        good = adapter_for(adapters, secured.port, username=USER, password=PASSWORD)
        results = await good.send(envelope(officials(3)))
        assert sorted(results.sent) == [0, 1, 2] and len(secured.recorder.messages) == 3
        wrong = adapter_for(adapters, secured.port, username=USER, password="sai")
        refused = await wrong.send(envelope(officials(3)))
        assert sorted(i for i, _ in refused.requeue) == [0, 1, 2]
        assert all(r.startswith("SMTP login refused by 127.0.0.1:") and "535" in r
                   for _, r in refused.requeue)
        assert all("sai" not in r for _, r in refused.requeue)
        anonymous = adapter_for(adapters, secured.port)
        unauthenticated = await anonymous.send(envelope(officials(1)))
        assert [r for _, r in unauthenticated.failed] == [
            "SMTP 530: 5.7.0 Authentication required"]
    finally:
        secured.stop()


async def test_required_starttls_is_never_skipped(server: Server,
                                                  adapters: list[EmailAdapter]) -> None:
    adapter = adapter_for(adapters, server.port, starttls=True)
    results = await adapter.send(envelope(officials(2)))
    assert sorted(i for i, _ in results.requeue) == [0, 1]
    assert "STARTTLS" in results.requeue[0][1] and server.recorder.messages == []


async def test_config_checks_and_close() -> None:
    cfg = msgspec.convert({"host": "mail.quangninh.gov.vn", "sender": "loa@quangninh.gov.vn",
                           "username": "loa", "password_env": "LOA_SMTP_PASSWORD"},
                          EmailConfig)
    assert cfg.port == 587 and cfg.starttls and cfg.pool_size == 4
    assert cfg.sender_name == "Sở Thông tin và Truyền thông Quảng Ninh"
    with pytest.raises(ConfigError, match="use_tls"):
        EmailAdapter(msgspec.structs.replace(cfg, use_tls=True))
    with pytest.raises(ConfigError, match="sender"):
        EmailAdapter(msgspec.structs.replace(cfg, sender="Sở TT&TT"))
    with pytest.raises(ConfigError, match="pool_size"):
        EmailAdapter(msgspec.structs.replace(cfg, pool_size=0))
    adapter = EmailAdapter(cfg)
    await adapter.aclose()
    with pytest.raises(ChannelError):
        await adapter.send(envelope(officials(1)))
