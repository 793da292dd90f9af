"""The ``[wifi]`` settings: a wrong value is one line naming the key, the secrets come from the
environment at start; and the reconciling process pushes the notices (``build_engine``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from adapters.wifi.simulator import WifiControllerSim
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.level import set_level
from dispatcher.service.cli import main
from dispatcher.service.process import build_engine
from dispatcher.service.settings import Settings, load_settings
from dispatcher.store import MemoryStore
from tests.conftest import run_engine_until

CAP = '[cap]\nsender = "soyte@quangninh.gov.vn"\n'
ENV = {"LOA_WIFI_HUE_SECRET": "k3y-of-hue-park"}


def wifi(controller: str = "", table: str = "", cap: str = CAP) -> str:
    controller = controller or ('id = "hue-park", name = "Công viên", '
                                'url = "https://wifi.example.vn/loa-notice", '
                                'secret_env = "LOA_WIFI_HUE_SECRET"')
    return f"{cap}[wifi]\n{table}controllers = [{{ {controller} }}]\n"


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "loa.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, ENV if env is None else env)


def refused(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    message = str(caught.value)
    assert "\n" not in message
    return message.removeprefix(f"{tmp_path / 'loa.toml'}: ")


def test_a_controller_with_its_secret_from_the_environment(tmp_path: Path) -> None:
    settings = load(tmp_path, wifi(table="timeout = 3.0\nretry_max_seconds = 60.0\n"))
    [controller] = settings.wifi.controllers
    assert (controller.id, controller.name, controller.url) == (
        "hue-park", "Công viên", "https://wifi.example.vn/loa-notice")
    assert controller.secret == "k3y-of-hue-park" and "k3y" not in repr(settings)
    assert (settings.wifi.timeout, settings.wifi.retry_max_seconds) == (3.0, 60.0)
    secret_file = tmp_path / "hue.secret"
    secret_file.write_text("from-a-file\n", encoding="utf-8")
    from_file = load(tmp_path, wifi(), {"LOA_WIFI_HUE_SECRET_FILE": str(secret_file)})
    assert from_file.wifi.controllers[0].secret == "from-a-file"
    assert load(tmp_path, "").wifi.controllers == []  # none: nothing is pushed


@pytest.mark.parametrize(("text", "env", "expected"), [
    (wifi(), {}, "wifi.controllers[0].secret_env: the environment variable LOA_WIFI_HUE_SECRET "
                 "is not set (nor LOA_WIFI_HUE_SECRET_FILE, naming a file that holds it)"),
    (wifi('id = "a", url = "https://w.example/n", secret_env = "S", secret = "inline"'), None,
     "wifi.controllers[0].secret: a secret is not written in this file: set secret_env to the "
     "name of an environment variable holding it (or NAME_FILE naming a file that holds it)"),
    (wifi('id = "a", url = "https://w.example/n"'), None,
     "wifi.controllers[0].secret_env: is required: the name of the environment variable "
     "holding the key that signs the pushes"),
    (wifi('id = "a", url = "ftp://w.example/n", secret_env = "S"'), None,
     "wifi.controllers[0].url: 'ftp://w.example/n' is not an http(s) URL"),
    (wifi('id = "Hue Park", url = "https://w.example/n", secret_env = "S"'), None,
     "wifi.controllers[0].id: 'Hue Park': lower-case letters, digits and dashes, at most 40 "
     "(e.g. \"hue-park\")"),
    (CAP + '[wifi]\ncontrollers = [{ id = "a", url = "https://w.example/n", secret_env = "S" },'
           ' { id = "a", url = "https://v.example/n", secret_env = "S" }]\n', None,
     "wifi.controllers[1].id: 'a' is given twice"),
    (wifi('id = "a", url = "https://w.example/n", secret_env = "S", colour = "red"'), None,
     "wifi.controllers[0]: Object contains unknown field `colour`"),
    (wifi(table="timeout = 0\n"), None, "wifi.timeout: must be more than 0 (seconds)"),
    (wifi(table="retry_jitter = 1.0\n"), None,
     "wifi.retry_jitter: must be at least 0 and below 1"),
    (wifi(table="retry_base_seconds = 10.0\nretry_max_seconds = 5.0\n"), None,
     "wifi.retry_base_seconds: must be at most retry_max_seconds"),
    (wifi(table='timeout = "soon"\n'), None, "wifi.timeout: Expected `float`, got `str`"),
    (wifi(table='proxy = "http://u:pw@proxy.example:3128"\n'), None,
     "wifi.proxy: a password is not written in this file ('http://u:***@proxy.example:3128'): "
     "leave proxy empty and give the URL in HTTPS_PROXY / HTTP_PROXY"),
    (wifi(cap=""), None, "wifi.controllers: the notices pushed are the public alerts published "
                         "as CAP messages: set [cap] sender too"),
])
def test_a_wrong_value_is_one_line_naming_the_key(tmp_path: Path, text: str,
                                                  env: dict[str, str] | None,
                                                  expected: str) -> None:
    assert refused(tmp_path, text, env) == expected


def test_loa_worker_refuses_a_wrong_wifi_table_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "loa.toml"
    path.write_text(wifi(), encoding="utf-8")
    monkeypatch.delenv("LOA_WIFI_HUE_SECRET", raising=False)
    monkeypatch.delenv("LOA_WIFI_HUE_SECRET_FILE", raising=False)
    status = main(["worker", "--config", str(path), "--redis", "redis://127.0.0.1:9/0"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.strip() == (f"loa: error: {path}: wifi.controllers[0].secret_env: the "
                           "environment variable LOA_WIFI_HUE_SECRET is not set (nor "
                           "LOA_WIFI_HUE_SECRET_FILE, naming a file that holds it)")


async def test_the_reconciling_process_pushes_each_new_notice(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    async with WifiControllerSim(secret="k3y-of-hue-park") as sim:
        controller = (f'id = "hue-park", url = "{sim.url}", '
                      'secret_env = "LOA_WIFI_HUE_SECRET"')
        simulated = "[channels]\nsimulate = [" + ", ".join(f'"{c}"' for c in Channel) + "]\n"
        settings = load(tmp_path, simulated + wifi(controller, table='proxy = "direct"\n'))
        store = MemoryStore()
        assert build_engine(store, settings, plan, province, numbering,
                            reconcile=False).wifi is None  # a worker alone does not push
        engine = build_engine(store, settings, plan, province, numbering, reconcile=True)
        assert engine.wifi is not None
        await set_level(store, plan, now=dt.datetime.now(dt.UTC), level=3)

        async def pushed() -> bool:
            return bool(sim.notices)

        await run_engine_until(engine, pushed)
        await engine.wifi.aclose()
        assert sim.notices[0]["level"] == 3 and sim.notices[0]["msgType"] == "Alert"
        assert await store.wifi.cursors() == {"hue-park": 1}
