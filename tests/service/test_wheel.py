"""The wheel is the product: build it from what the Dockerfile's build stage copies, install it
into a fresh venv outside the checkout (its dependencies from the package index, as the image
does), and run Loa from there with no LOA_CONFIG_DIR: the plan, the numbers, a starter config,
and `loa run` against a private redis-server until /healthz and /readyz answer, then SIGTERM.

The same commands run in the Dockerfile (SMOKE, then its CMD with a port and a Redis)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.localredis import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"

#: What the image's build stage runs on the installed Loa, from `/`, before it is kept.
SMOKE = (
    "loa plan show --json",
    "loa plan level --cases 3 --json",
    "loa number 0912345678 --json",
    "loa config init loa.toml",
)


def build_context(dest: Path) -> Path:
    """The files the Dockerfile's build stage copies (its `COPY` lines before its first
    `RUN`), laid out as in the image: the wheel is built from exactly these."""
    stage = dockerfile_stages()[0].split("\nRUN ", 1)[0]
    dest.mkdir()
    for line in re.findall(r"^COPY (.+)$", stage, re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, dest / source,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(path, dest / source)
    return dest


def _env() -> dict[str, str]:
    """The machine's environment without anything that points into the checkout."""
    drop = {"LOA_CONFIG_DIR", "PYTHONPATH", "VIRTUAL_ENV", "LOA_REDIS_URL", "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


class Installed:
    def __init__(self, venv: Path, home: Path) -> None:
        self.bin = venv / "bin"
        self.home = home  # the working directory: outside the checkout

    def loa(self, command: str, *extra: str | Path) -> subprocess.CompletedProcess[str]:
        words = command.split()
        assert words[0] == "loa"
        return _run(self.bin / "loa", *words[1:], *extra, cwd=self.home, timeout=60)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    assert not base.resolve().is_relative_to(ROOT)
    src = build_context(base / "src")
    wheels = base / "wheels"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, ".",
                 cwd=src)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = wheels.glob("loa-*.whl")
    venv = base / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=base)  # the base Python, nothing else
    assert made.returncode == 0, made.stderr
    done = _run(venv / "bin" / "pip", "install", wheel, cwd=base)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    home = base / "home"
    home.mkdir()
    yield Installed(venv, home)


def test_the_installed_loa_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    done = _run(installed.bin / "python", "-c",
                "import dispatcher, dispatcher.domain.config as c; print(dispatcher.__file__); "
                "print(c.config_dir())", cwd=installed.home)
    assert done.returncode == 0, done.stderr
    package, config = (Path(line) for line in done.stdout.splitlines())
    assert "site-packages" in package.parts and not package.is_relative_to(ROOT)
    assert config.is_relative_to(package.parent) and (config / "plan.toml").is_file()


def test_the_installed_loa_reads_its_shipped_plan_and_numbering(installed: Installed) -> None:
    shown = installed.loa(SMOKE[0])
    assert shown.returncode == 0, shown.stderr
    assert all(json.loads(line) for line in shown.stdout.splitlines())
    level = installed.loa(SMOKE[1])
    assert level.returncode == 0, level.stderr
    assert json.loads(level.stdout) == {"cases": 3, "level": 2}
    number = installed.loa(SMOKE[2])
    assert number.returncode == 0, number.stderr
    assert json.loads(number.stdout)["msisdn"] == "84912345678"


def test_the_installed_loa_still_takes_another_config(installed: Installed,
                                                      tmp_path: Path) -> None:
    env = _env() | {"LOA_CONFIG_DIR": str(tmp_path)}
    elsewhere = subprocess.run([str(installed.bin / "loa"), "plan", "level", "--cases", "3"],
                               cwd=installed.home, env=env, capture_output=True, text=True,
                               timeout=60, check=False)
    assert elsewhere.returncode == 2
    assert elsewhere.stderr.strip() == f"loa: error: {tmp_path / 'plan.toml'}: file not found"
    flag = installed.loa("loa number 0912345678 --numbering", tmp_path / "numbering.toml")
    assert flag.returncode == 2 and "numbering.toml: file not found" in flag.stderr


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_the_installed_loa_runs_the_service_the_image_runs(installed: Installed,
                                                           redis_url: str) -> None:
    config = installed.home / "loa.toml"
    written = installed.loa(SMOKE[3])
    assert written.returncode == 0, written.stderr
    assert "[api]" in config.read_text(encoding="utf-8")
    again = installed.loa(SMOKE[3])
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1
    assert "--force" in again.stderr

    cmd = dockerfile_cmd()
    assert cmd[:3] == ["run", "--config", "/etc/loa/loa.toml"]
    args = [c.replace("/etc/loa/loa.toml", str(config)) for c in cmd]
    # the starter file configures no channel: the service refuses to start (fails closed)
    refused = installed.loa(" ".join(["loa", *args, "--redis", redis_url, "--port",
                                      str(free_port())]))
    errors = [line for line in refused.stderr.splitlines() if line.startswith("loa: error:")]
    assert refused.returncode == 2 and len(errors) == 1  # one line (after the token warning)
    assert "channel sms has no configuration" in errors[0]
    simulate_every_channel(config)
    serve(installed, args, "--redis", redis_url, paths=("/healthz", "/readyz"), port="--port")


def simulate_every_channel(config: Path) -> None:
    """Declare every channel simulated, as a trial run without carriers does."""
    with config.open("a", encoding="utf-8") as out:
        out.write('\n[channels]\nsimulate = ["sms", "zalo", "email", "app", "facebook", '
                  '"loudspeaker", "cell_broadcast"]\n')


def test_the_installed_loa_runs_a_worker(installed: Installed, redis_url: str) -> None:
    config = installed.home / "worker.toml"
    assert installed.loa("loa config init", config).returncode == 0
    simulate_every_channel(config)
    serve(installed, ["worker", "--config", str(config)], "--redis", redis_url,
          paths=("/metrics",), port="--metrics-port")


def test_the_installed_loa_carries_the_lab(installed: Installed) -> None:
    """The lab ships in the wheel without its pytest-benchmark files, and its commands run."""
    (site,) = (installed.bin.parent / "lib").glob("python*/site-packages")
    shipped = {p.name for p in (site / "bench").glob("*.py")}
    assert {"wavebench.py", "chaos.py", "localredis.py", "demo.py"} <= shipped
    assert not [name for name in shipped if name.startswith("test_")]
    for command in ("loa demo --help", "loa bench --help", "loa chaos --help"):
        done = installed.loa(command)
        assert done.returncode == 0, done.stderr
    out = installed.home / "audience.csv"
    done = installed.loa("loa audience generate --count 100 --seed 3 -o", out)
    assert done.returncode == 0, done.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 101
    proc = subprocess.Popen([str(installed.bin / "loa"), "sim", "smsc", "--port", "0", "--json"],
                            cwd=installed.home, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("SMSC simulator listening on 127.0.0.1:"), proc.stderr
        proc.send_signal(signal.SIGTERM)
        out_text, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, err
    assert json.loads(out_text.strip().splitlines()[-1])["binds"] == 0


def serve(installed: Installed, args: list[str], *extra: str, paths: tuple[str, ...],
          port: str) -> None:
    """Start the installed `loa ARGS` on a free port, wait until each of ``paths`` answers 200
    (bounded), then SIGTERM it and expect exit status 0."""
    number = free_port()
    proc = subprocess.Popen([str(installed.bin / "loa"), *args, *extra, port, str(number)],
                            cwd=installed.home, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{number}"
        deadline = time.monotonic() + 60  # a bound on a hang, not a measure of speed
        for path in paths:
            while _status(base + path) != 200:
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                assert time.monotonic() < deadline, f"{path} never answered 200"
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.communicate()[1][-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.communicate()


def dockerfile_stages() -> tuple[str, str]:
    """The build stage and the final stage of the Dockerfile."""
    _, build, final = DOCKERFILE.read_text(encoding="utf-8").split("\nFROM ")
    return build, final


def dockerfile_cmd() -> list[str]:
    (cmd,) = re.findall(r"^CMD (\[.*\])$", DOCKERFILE.read_text(encoding="utf-8"),
                        re.MULTILINE)
    words: list[str] = json.loads(cmd)
    return words


def test_the_image_runs_the_commands_the_smoke_test_runs() -> None:
    build, final = dockerfile_stages()
    text = build + final
    assert "pip wheel --no-deps" in build
    assert re.search(r"pip install \S*/wheels/loa-\S*\.whl", build)
    assert "pip install ." not in text
    for command in SMOKE:
        assert command in build, f"the Dockerfile does not run `{command}`"
    assert re.search(r"^COPY config ", build, re.MULTILINE)
    assert re.search(r"^ENTRYPOINT \[\"loa\"\]$", final, re.MULTILINE)


def test_a_checkout_reads_the_repository_config() -> None:
    from dispatcher.domain.config import DEFAULT_CONFIG_DIR  # noqa: PLC0415

    assert DEFAULT_CONFIG_DIR == ROOT / "config"


def test_config_init_names_the_shipped_example_when_it_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse  # noqa: PLC0415

    from dispatcher.domain.errors import ConfigError  # noqa: PLC0415
    from dispatcher.service.cli import api  # noqa: PLC0415

    missing = tmp_path / "defaults" / "loa.example.toml"
    monkeypatch.setattr(api, "EXAMPLE", missing)
    target = tmp_path / "loa.toml"
    with pytest.raises(ConfigError) as caught:
        api.cmd_config_init(argparse.Namespace(file=target, force=False))
    assert str(missing) in str(caught.value) and not target.exists()
