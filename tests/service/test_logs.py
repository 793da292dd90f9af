"""Logs of the long-running commands: text or JSON lines with time, level, logger and the ids of
what was being worked on; the level filter; flags over LOA_LOG_* over the [log] table; secrets
hidden in both formats; and `loa run` itself writing them (the engine's and uvicorn's lines)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.zalo.tokens import MemoryTokenStore
from bench.localredis import free_port
from dispatcher.domain.errors import ConfigError
from dispatcher.engine import logs
from dispatcher.service.api import load_deployment
from dispatcher.service.cli import build_parser, logopts, main
from dispatcher.service.settings import load_settings
from tests.conftest import loa_process

WHEN = 1_780_000_000.25  # 2026-05-28T20:26:40.250Z
SMPP_PASSWORD = "Sm7f3aQz-log"
OA_SECRET = "oa-webhook-Secret-log1"
REDIS_PASSWORD = "redis-Pa55-log2"
SECRETS = {"LOA_T_SMPP_PASSWORD": SMPP_PASSWORD, "LOA_T_OA_SECRET": OA_SECRET}
CONFIG = f"""\
[redis]
url = "redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"
[smpp.viettel]
host = "127.0.0.1"
port = 1
system_id = "loa"
password_env = "LOA_T_SMPP_PASSWORD"
[api]
zalo_app_id = "app"
zalo_oa_secret_env = "LOA_T_OA_SECRET"
"""


@pytest.fixture(autouse=True)
def root_logger() -> Iterator[None]:
    """Each test leaves the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        logs.teardown()
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)


def record(message: str, *args: object, level: int = logging.INFO, **extra: Any
           ) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "dispatcher.engine.process", "levelno": level,
                                  "levelname": logging.getLevelName(level), "msg": message,
                                  "args": args, "created": WHEN, **extra})
    return made


def test_json_line_has_time_level_logger_message_and_ids() -> None:
    line = logs.JsonFormatter(logs.Redactor()).format(
        record("wave %s completed", "w-1", wave="w-1", campaign="c-9", channel="sms"))
    assert "\n" not in line
    assert json.loads(line) == {"time": "2026-05-28T20:26:40.250Z", "level": "INFO",
                                "logger": "dispatcher.engine.process",
                                "message": "wave w-1 completed",
                                "wave": "w-1", "campaign": "c-9", "channel": "sms"}


def test_text_line_has_time_level_logger_and_ids() -> None:
    line = logs.TextFormatter(logs.Redactor()).format(
        record("viettel#0: bound", level=logging.WARNING, link="viettel"))
    assert line == ("2026-05-28T20:26:40.250Z WARNING dispatcher.engine.process: viettel#0: bound "
                    "[link=viettel]")


def test_context_ids_reach_every_line_of_the_block() -> None:
    fmt = logs.JsonFormatter(logs.Redactor())
    with logs.context(wave="w-2", campaign="c-2"), logs.context(route="sms.viettel"):
        inside = json.loads(fmt.format(record("batch sent", route="sms.other")))
    outside = json.loads(fmt.format(record("idle")))
    assert (inside["wave"], inside["campaign"], inside["route"]) == ("w-2", "c-2", "sms.other")
    assert "wave" not in outside and "route" not in outside
    with pytest.raises(ValueError, match="colour"), logs.context(colour="red"):
        pass


async def test_each_task_carries_its_own_ids() -> None:
    stream = io.StringIO()
    logs.setup("json", "info", stream=stream)

    async def consume(route: str) -> None:
        with logs.context(route=route):
            await asyncio.sleep(0)  # the two tasks interleave
            with logs.context(wave=f"w-{route}"):
                await asyncio.sleep(0)
                logging.getLogger("dispatcher.engine.worker").warning("batch requeued")

    await asyncio.gather(consume("sms.viettel"), consume("zalo"))
    lines = sorted((d["route"], d["wave"]) for d in map(json.loads, stream.getvalue().splitlines()))
    assert lines == [("sms.viettel", "w-sms.viettel"), ("zalo", "w-zalo")]


async def test_zalo_tokens_are_hidden_once_read_or_renewed() -> None:
    stream = io.StringIO()
    logs.setup("text", "info", stream=stream)
    tokens = logs.HiddenTokens(MemoryTokenStore("zAcc-first-1a2b", "zRef-first-3c4d"))
    assert await tokens.get() == ("zAcc-first-1a2b", "zRef-first-3c4d")
    await tokens.save("zAcc-second-5e6f", "zRef-second-7a8b")
    log = logging.getLogger("adapters.zalo.adapter")
    log.warning("answer for zAcc-first-1a2b / zRef-first-3c4d")
    log.warning("renewed: zAcc-second-5e6f zRef-second-7a8b")
    out = stream.getvalue()
    assert "zAcc" not in out and "zRef" not in out and out.count("***") == 4


def test_a_traceback_is_one_json_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        rec = record("failed", exc_info=sys.exc_info())
    line = logs.JsonFormatter(logs.Redactor()).format(rec)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["message"] == "failed" and "RuntimeError: boom" in doc["exc"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_never_appear(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    path.write_text(CONFIG, encoding="utf-8")
    settings, api = load_deployment(path, SECRETS)
    stream = io.StringIO()
    logs.setup(fmt, "debug", secrets=logs.secrets_of(settings, api), stream=stream)
    log = logging.getLogger("adapters.smpp.session")
    log.warning("bind refused with %s", SMPP_PASSWORD, extra={"link": SMPP_PASSWORD})
    log.info("webhook %s", OA_SECRET)
    log.info("connecting to %s", str(settings.redis.url))
    log.info("GET /oauth?access_token=zAt-81hx&x=1 with refresh_token: 'zRt-93jq'")
    log.info('{"access_token": "zAt-77ab"} Authorization: Bearer loa_tok-5d2b-e1')
    try:
        raise ValueError(f"password={SMPP_PASSWORD}")
    except ValueError:
        log.exception("failed")
    out = stream.getvalue()
    for secret in (SMPP_PASSWORD, OA_SECRET, REDIS_PASSWORD, "zAt-81hx", "zRt-93jq",
                   "zAt-77ab", "loa_tok-5d2b-e1"):
        assert secret not in out, f"{secret!r} shows in {out!r}"
    assert out.count("***") >= 8
    assert "redis://:***@127.0.0.1:1/0" in out
    if fmt == "json":
        assert all(json.loads(line) for line in out.splitlines())


def test_the_level_filters_records() -> None:
    stream = io.StringIO()
    logs.setup("json", "warning", stream=stream)
    logging.getLogger("dispatcher.engine.worker").info("wave w-1 fanned out")
    logging.getLogger("dispatcher.engine.worker").warning("route sms.viettel paused")
    logging.getLogger("uvicorn.error").info("Started server process")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(d["level"], d["message"]) for d in lines] == [
        ("WARNING", "route sms.viettel paused")]


def configured(argv: list[str], env: dict[str, str]) -> tuple[str, int]:
    """The format and level `loa ARGV` logs with under ``env``."""
    logopts.configure(build_parser().parse_args(argv), env)
    handler = logging.getLogger().handlers[-1]
    fmt = "json" if isinstance(handler.formatter, logs.JsonFormatter) else "text"
    return fmt, handler.level


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    path.write_text('[log]\nformat = "json"\nlevel = "error"\n', encoding="utf-8")
    worker = ["worker", "--config", str(path)]
    assert configured(["worker"], {}) == ("text", logging.INFO)
    assert configured(["demo"], {}) == ("text", logging.WARNING)  # its own default
    assert configured(worker, {}) == ("json", logging.ERROR)
    assert configured(worker, {"LOA_LOG_LEVEL": "DEBUG"}) == ("json", logging.DEBUG)
    assert configured(worker, {"LOA_LOG_FORMAT": "text"}) == ("text", logging.ERROR)
    assert configured([*worker, "--log-format", "text", "--log-level", "warning"],
                      {"LOA_LOG_FORMAT": "json", "LOA_LOG_LEVEL": "debug"}) == (
        "text", logging.WARNING)
    assert configured(["sim", "smsc", "--log-level", "error"], {"LOA_LOG_FORMAT": "json"}) == (
        "json", logging.ERROR)
    assert configured(["bench", "engine", "--log-format", "json"], {}) == ("json",
                                                                           logging.WARNING)


def test_bad_values_are_one_line_naming_the_option(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "loa.toml"
    path.write_text('[log]\nformat = "xml"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"log\.format.*text or json"):
        load_settings(path, {})
    with pytest.raises(ConfigError, match=r"log\.level"):
        load_settings(None, {"LOA_LOG_LEVEL": "loud"})
    assert main(["worker", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "log.format" in err and "Traceback" not in err
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOA_LOG_LEVEL", "loud")
        assert main(["sim", "zalo"]) == 2
    err = capsys.readouterr().err
    assert err == ("loa: error: LOA_LOG_LEVEL: must be one of debug, info, warning, error, "
                   "critical, not 'loud'\n")
    with pytest.raises(SystemExit) as exit_:
        main(["worker", "--log-level", "loud"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--log-level" in err and "Traceback" not in err


def test_main_leaves_the_root_logger_as_it_found_it() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    assert main(["sim", "smsc", "--port", "70000", "--log-level", "debug"]) == 2
    assert (root.handlers, root.level) == (handlers, level)


@pytest.mark.parametrize("simulator", ["smsc", "zalo"])
def test_a_simulator_on_a_port_in_use_says_so_in_one_line(
        simulator: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["sim", simulator, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def _loa(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher.service.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def _http(url: str, token: str = "", body: dict[str, Any] | None = None
          ) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_loa_run_writes_json_lines_with_the_engine_and_the_api(tmp_path: Path,
                                                               redis_url: str) -> None:
    config = tmp_path / "loa.toml"
    assert _loa("config", "init", str(config), cwd=tmp_path).returncode == 0
    with config.open("a", encoding="utf-8") as out:  # no carrier here: every channel simulated
        out.write('\n[channels]\nsimulate = ["sms", "zalo", "email", "app", "facebook", '
                  '"loudspeaker", "cell_broadcast"]\n')
    token = _loa("token", "create", "--config", str(config), "--user", "olga", "--role",
                 "admin", cwd=tmp_path).stdout.strip().splitlines()[-1]
    audience = tmp_path / "audience.csv"
    assert _loa("audience", "generate", "--count", "50", "-o", str(audience),
                cwd=tmp_path).returncode == 0
    assert _loa("audience", "import", str(audience), "--redis", redis_url,
                cwd=tmp_path).returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with loa_process(["run", "--config", str(config), "--port", str(port), "--redis",
                      redis_url], cwd=tmp_path, ready=[f"{base}/healthz"], text=True,
                     env=os.environ | {"LOA_LOG_FORMAT": "json"}) as proc:
        status, doc = _http(f"{base}/v1/campaigns", token,
                            {"title": "Khẩn", "channels": ["sms"], "text": "Deo khau trang",
                             "priority": "urgent"})
        assert status == 201, doc
        campaign = doc["id"]
        deadline = time.monotonic() + 30
        while True:
            status, doc = _http(f"{base}/v1/campaigns/{campaign}", token)
            if status == 200 and doc["campaign"]["state"] == "completed":
                break
            assert time.monotonic() < deadline, doc
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    _, err = proc.communicate()
    lines = [json.loads(line) for line in err.splitlines()]  # every line is JSON
    assert lines, "no log lines"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert line["time"].endswith("Z")
    completed = [d for d in lines if d["message"].endswith("completed")]
    assert completed and all(d["campaign"] == campaign and d["wave"] and d["channel"] == "sms"
                             and d["logger"] == "dispatcher.engine.process" for d in completed)
    assert any(d["logger"] == "uvicorn.error" for d in lines)
    assert any(d["logger"] == "uvicorn.access" and "/v1/campaigns" in d["message"]
               for d in lines)
    assert token not in err
