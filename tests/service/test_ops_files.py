"""The shipped operations files: the Grafana dashboard, the Prometheus rules and scrape config,
the local stack. Every metric they name must exist; promtool checks the rules when installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric

import dispatcher.engine.metrics
import dispatcher.service.channels  # noqa: F401  (and the channels', as a Loa process loads them)

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
NAME = re.compile(r"\bloa_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("_sum", "_count"), "gauge": ("",), "info": ("_info",)}


def exposed_names() -> set[str]:
    """Every series name the registry's loa_ families can expose, children or not."""
    names: set[str] = set()
    family: Metric
    for family in REGISTRY.collect():
        if family.name.startswith("loa_"):
            names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def dashboard_exprs() -> list[str]:
    data = json.loads((CONFIG / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(data["panels"])
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((CONFIG / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def unknown(exprs: list[str]) -> set[str]:
    known = exposed_names()
    return {name for expr in exprs for name in NAME.findall(expr) if name not in known}


def test_the_dashboard_loads_and_names_only_existing_metrics() -> None:
    data = json.loads((CONFIG / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert data["uid"] and data["title"] and data["schemaVersion"] >= 30
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    assert unknown(exprs) == set()
    joined = "\n".join(exprs)
    for wanted in ("loa_messages_total", "loa_batch_seconds_bucket", "loa_queue_entries",
                   "loa_smpp_bind_up", "loa_receipts_total", "loa_zalo_remaining_quota",
                   "loa_level"):
        assert wanted in joined, f"no panel shows {wanted}"
    assert "histogram_quantile" in joined


def test_the_alert_rules_load_and_name_only_existing_metrics() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == {"LoaSmppLinkDown", "LoaThroughputStalled",
                                          "LoaDeadLettersGrowing", "LoaReceiptMatchRateLow",
                                          "LoaZaloQuotaLow", "LoaZaloRouteStopped",
                                          "LoaZaloRefreshTokenAgeing", "LoaPortalSiteStopped",
                                          "LoaPortalSiteDown", "LoaEmergencyStopOn",
                                          "LoaWifiControllerRefusing", "LoaWifiNoticeRejected",
                                          "LoaWifiControllerBehind",
                                          "LoaFacebookPageStopped", "LoaFacebookAlert",
                                          "LoaCellBroadcastCarrierStopped",
                                          "LoaCellBroadcastCancelFailing",
                                          "LoaCellBroadcastRejected",
                                          "LoaProcessDown", "LoaRedisDown",
                                          "LoaLoudspeakerSystemStopped",
                                          "LoaLoudspeakerSpeechFailing"}
    for rule in rules:
        assert rule["expr"] and rule["annotations"]["summary"] and rule["labels"]["severity"]
    assert unknown([r["expr"] for r in rules]) == set()


def test_the_name_check_catches_a_misspelt_metric() -> None:
    assert unknown(["rate(loa_mesages_total[1m])", "loa_messages_total"]) == {
        "loa_mesages_total"}
    assert unknown(["loa_batch_seconds_bucket", "loa_batch_seconds_total"]) == {
        "loa_batch_seconds_total"}


def test_promtool_accepts_the_rules() -> None:
    venv = Path(sys.executable).parent  # where `make test` puts it
    promtool = shutil.which("promtool") or shutil.which("promtool", path=venv)
    if promtool is None:
        pytest.fail("promtool is not installed (from Debian's package prometheus); "
                    "`make test` fetches it")
    done = subprocess.run([promtool, "check", "rules", str(CONFIG / "prometheus-alerts.yml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def promtool_path() -> str:
    promtool = shutil.which("promtool") or shutil.which("promtool",
                                                         path=Path(sys.executable).parent)
    if promtool is None:
        pytest.fail("promtool is not installed; `make test` fetches it")
    return promtool


def promtool_test(tmp_path: Path, tests: list[dict[str, Any]],
                  rule_files: list[str] | None = None) -> None:
    """Run ``promtool test rules`` on ``tests`` (evaluated every minute)."""
    cases = {"rule_files": rule_files or [str(CONFIG / "prometheus-alerts.yml")],
             "evaluation_interval": "1m", "tests": tests}
    path = tmp_path / "promtool-test.yml"
    path.write_text(yaml.safe_dump(cases), encoding="utf-8")
    done = subprocess.run([promtool_path(), "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def firing(alert: str, **labels: str) -> dict[str, Any]:
    """What promtool should see of ``alert`` firing with ``labels`` (and its annotations)."""
    rule = next(r for r in alert_rules() if r["alert"] == alert)
    annotations = {}
    for key, template in rule["annotations"].items():
        text = template
        for name, value in labels.items():
            text = text.replace(f"{{{{ $labels.{name} }}}}", value)
        annotations[key] = text
    return {"exp_labels": {"severity": rule["labels"]["severity"], **labels},
            "exp_annotations": annotations}


def test_link_down_fires_only_when_no_worker_has_a_bind_of_the_link_up(
        tmp_path: Path) -> None:
    """Binds of a link are spread over workers by leases: a worker holding none of a link's
    binds reports 0 for it, and that is no outage. Two workers: w1 holds both binds of
    ``viettel`` (then loses them), w2 none; w2 holds ``mobifone``'s bind all along."""
    down = firing("LoaSmppLinkDown", link="viettel")
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": 'loa_smpp_bind_up{instance="w1",link="viettel"}', "values": "2x5 0x5"},
            {"series": 'loa_smpp_bind_up{instance="w2",link="viettel"}', "values": "0x10"},
            {"series": 'loa_smpp_bind_up{instance="w1",link="mobifone"}', "values": "0x10"},
            {"series": 'loa_smpp_bind_up{instance="w2",link="mobifone"}', "values": "1x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "LoaSmppLinkDown", "exp_alerts": []},
            {"eval_time": "6m", "alertname": "LoaSmppLinkDown", "exp_alerts": []},  # for: 2m
            {"eval_time": "9m", "alertname": "LoaSmppLinkDown", "exp_alerts": [down]},
        ],
    }])


def test_process_and_redis_down_alerts_fire(tmp_path: Path) -> None:
    """A scrape target that stops answering, and a Redis no Loa process reaches."""
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": 'up{job="loa",instance="w1"}', "values": "1x10"},
            {"series": 'up{job="loa",instance="w2"}', "values": "1 1 0x8"},
            {"series": 'loa_store_up{job="loa",instance="w1"}', "values": "1x4 0x6"},
            {"series": 'loa_store_up{job="loa",instance="w2"}', "values": "1 1 0 0 0 0x6"},
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "LoaProcessDown", "exp_alerts": []},
            {"eval_time": "5m", "alertname": "LoaProcessDown", "exp_alerts": [
                firing("LoaProcessDown", job="loa", instance="w2")]},
            {"eval_time": "4m", "alertname": "LoaRedisDown", "exp_alerts": []},
            {"eval_time": "8m", "alertname": "LoaRedisDown", "exp_alerts": [
                firing("LoaRedisDown")]},
        ],
    }])


def test_every_alert_has_a_runbook_section() -> None:
    """Each alert links to a heading of docs/operations.md named after it."""
    ops = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    headings = {m.group(1) for m in re.finditer(r"^#+ .*?`?(Loa\w+)`?\s*$", ops, re.M)}
    for rule in alert_rules():
        name = rule["alert"]
        assert name in headings, f"docs/operations.md has no section for {name}"
        url = rule["annotations"].get("runbook_url", "")
        assert url.endswith(f"docs/operations.md#{name.lower()}"), f"{name}: runbook_url {url!r}"


def test_live_waves_counts_each_wave_once_whatever_the_workers(tmp_path: Path) -> None:
    """Every worker reports the same waves (they live in the shared Redis): the panel must not
    multiply them by the number of workers."""
    data = json.loads((CONFIG / "grafana-dashboard.json").read_text(encoding="utf-8"))
    panel = next(p for p in data["panels"] if p.get("title") == "Live waves")
    rules = tmp_path / "none.yml"
    rules.write_text("groups: []\n", encoding="utf-8")
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": f'loa_waves{{instance="{w}",state="{s}"}}', "values": f"{n}x3"}
            for w in ("w1", "w2", "w3") for s, n in (("sending", 3), ("created", 1),
                                                    ("completed", 7))],
        "promql_expr_test": [{"expr": t["expr"], "eval_time": "2m",
                              "exp_samples": [{"labels": '{state="created"}', "value": 1},
                                              {"labels": '{state="sending"}', "value": 3}]}
                             for t in panel["targets"]],
    }], rule_files=[str(rules)])


def test_every_panel_takes_the_datasource_variable() -> None:
    data = json.loads((CONFIG / "grafana-dashboard.json").read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for holder in [panel, *panel.get("targets", [])]:
                if "datasource" in holder or holder is not panel or panel.get("targets"):
                    assert holder.get("datasource", {}).get("uid") == "${datasource}", (
                        f"panel {panel.get('title')!r}: datasource {holder.get('datasource')}")
            walk(panel.get("panels", []))

    walk(data["panels"])
    assert '"uid": "prometheus"' not in (CONFIG / "grafana-dashboard.json").read_text()


def test_the_emergency_stop_alert_fires_while_the_stop_is_on(tmp_path: Path) -> None:
    """``promtool test rules``: two workers report the stop off, then one reports it on."""
    promtool = promtool_path()
    cases = {
        "rule_files": [str(CONFIG / "prometheus-alerts.yml")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": 'loa_emergency_stop{instance="w1"}', "values": "0 0 1 1 0"},
                {"series": 'loa_emergency_stop{instance="w2"}', "values": "0 0 0 1 0"},
            ],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": "LoaEmergencyStopOn", "exp_alerts": []},
                {"eval_time": "2m", "alertname": "LoaEmergencyStopOn", "exp_alerts": [{
                    "exp_labels": {"severity": "critical"},
                    "exp_annotations": {k: v for k, v in next(
                        r for r in alert_rules()
                        if r["alert"] == "LoaEmergencyStopOn")["annotations"].items()}}]},
                {"eval_time": "4m", "alertname": "LoaEmergencyStopOn", "exp_alerts": []},
            ],
        }],
    }
    path = tmp_path / "stop-test.yml"
    path.write_text(yaml.safe_dump(cases), encoding="utf-8")
    done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_scrape_config_has_one_loa_job_and_the_rules() -> None:
    data = yaml.safe_load((CONFIG / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = [j for j in data["scrape_configs"] if j["job_name"] == "loa"]
    assert len(jobs) == 1 and jobs[0]["metrics_path"] == "/metrics"
    targets = [t for s in jobs[0]["static_configs"] for t in s["targets"]]
    assert targets and all(re.fullmatch(r"[\w.-]+:\d+", t) for t in targets)
    assert data["rule_files"]


def test_the_local_stack_names_its_services_and_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) >= {"redis", "loa", "loa-smsc", "loa-zalo", "loa-portal", "prometheus",
                             "grafana"}
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--appendfsync everysec" in redis_cmd
    assert services["loa-smsc"]["command"][:2] == ["sim", "smsc"]
    assert "0.0.0.0" in services["loa-smsc"]["command"]
    assert services["loa-zalo"]["command"][:2] == ["sim", "zalo"]
    assert services["loa-portal"]["command"][:2] == ["sim", "portal"]
    # the portal sites of the stack's settings are the simulator's, with its credentials
    settings = (CONFIG / "loa-compose.toml").read_text(encoding="utf-8")
    port = services["loa-portal"]["command"][-1]
    assert f"http://loa-portal:{port}/qn-portal" in settings
    for process in ("loa", "loa-worker"):
        env = services[process]["environment"]
        assert env["LOA_PORTAL_DVC_SECRET"] == "sim-portal-secret"
        assert env["LOA_PORTAL_QN_PASSWORD"] == "abcd EFGH 1234 ijkl MNOP 5678"
    # the Facebook simulator serves the pages of the stack's [facebook], with the tokens the
    # Loa processes are given
    command = services["loa-facebook"]["command"]
    assert command[:2] == ["sim", "facebook"]
    served = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command)
                  if arg == "--page")
    stack = tomllib.loads((CONFIG / "loa-compose.toml").read_text(encoding="utf-8"))
    for name in ("loa", "loa-worker"):
        env = services[name]["environment"]
        assert {page["page_id"]: env[page["token_env"]]
                for page in stack["facebook"]["pages"]} == served, name
    # the cell broadcast centre simulator serves the carriers of the stack's [cell_broadcast],
    # with the credentials the Loa processes are given
    command = services["loa-cbc"]["command"]
    assert command[:2] == ["sim", "cellbroadcast"]
    served = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command)
                  if arg == "--carrier")
    for name in ("loa", "loa-worker"):
        env = services[name]["environment"]
        given = {c["id"]: env[c["token_env"]] if c["auth"] == "bearer"
                 else f"{c['user']}:{env[c['password_env']]}"
                 for c in stack["cell_broadcast"]["carriers"]}
        assert given == served, name
        assert all(c["url"] == f"http://loa-cbc:8730/{c['id']}/cap"
                   for c in stack["cell_broadcast"]["carriers"])
    for name, service in services.items():  # every file mounted from the repository exists
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"
    # what Prometheus is told to load is what compose mounts
    prometheus = yaml.safe_load((CONFIG / "prometheus.yml").read_text(encoding="utf-8"))
    mounted = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert set(prometheus["rule_files"]) <= mounted
    for path in (CONFIG / "grafana" / "provisioning").rglob("*.yml"):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["apiVersion"] == 1


def test_the_dockerfile_is_slim_non_root_and_checks_health() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms and all(f.startswith("python:3.11-slim") for f in froms)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text and "http://127.0.0.1:8080/healthz" in text
    # the wheel: tests/service/test_wheel.py
    assert "uvloop" in text and "pip install /wheels/loa-" in text
    assert "COPY config ./config" in text  # the defaults go into the wheel as package data
    assert '"--config", "/etc/loa/loa.toml"' in text
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".venv" in ignored and ".git" in ignored


def test_prometheus_scrapes_every_loa_process_of_the_stack_where_it_listens() -> None:
    """Each target of the loa job is a service of the local stack that serves /metrics on
    that port on an address other containers reach; the stack runs more than one process."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    prometheus = yaml.safe_load((CONFIG / "prometheus.yml").read_text(encoding="utf-8"))
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "loa")
    targets = [t for s in job["static_configs"] for t in s["targets"]]
    assert len(targets) >= 2, "the stack shows many workers on one dashboard"
    for target in targets:
        name, port = target.rsplit(":", 1)
        command = services[name]["command"]
        if command[0] == "worker":
            assert command[command.index("--metrics-port") + 1] == port, target
            assert command[command.index("--metrics-host") + 1] == "0.0.0.0", target
            assert services[name]["healthcheck"] == {"disable": True}
        else:  # loa run: the API's port and host
            assert command[0] == "run" and port == "8080"
            config = (ROOT / "config" / "loa-compose.toml").read_text(encoding="utf-8")
            assert 'host = "0.0.0.0"' in config and "port = 8080" in config


#: Gauges that describe the shared Redis or configuration: every worker reports the same value.
CLUSTER_WIDE = ("loa_queue_entries", "loa_queue_retries", "loa_dead_letters",
                "loa_queue_oldest_seconds", "loa_level", "loa_emergency_stop", "loa_waves",
                "loa_wave_messages", "loa_smpp_binds_granted")
ONCE = re.compile(r"\b(max|min)(?:\s*by\s*\(([^)]*)\))?\s*\((?:delta\()?\s*(loa_[a-z_]+)")


def summed_across_workers(expr: str) -> set[str]:
    """The cluster-wide gauges ``expr`` reads other than through a max or min over the
    workers (a max per instance, summed, counts them once per worker)."""
    once = {m.group(3) for m in ONCE.finditer(expr) if "instance" not in (m.group(2) or "")}
    return {n for n in NAME.findall(expr) if n in CLUSTER_WIDE and n not in once}


def test_the_check_catches_a_gauge_counted_once_per_worker() -> None:
    assert summed_across_workers(
        'sum by (state) (max by (state, instance) (loa_waves{state="x"}))') == {"loa_waves"}
    assert summed_across_workers("sum by (route) (loa_queue_entries)") == {"loa_queue_entries"}
    assert summed_across_workers("max by (route) (loa_queue_entries) > 0") == set()
    assert summed_across_workers("max by (route) (delta(loa_dead_letters[15m]))") == set()


def test_no_panel_or_alert_counts_a_shared_gauge_once_per_worker() -> None:
    exprs = dashboard_exprs() + [r["expr"] for r in alert_rules()]
    assert {e: summed_across_workers(e) for e in exprs if summed_across_workers(e)} == {}


def test_the_zalo_route_stopped_alert_fires_for_faults_not_for_quota_or_night(
        tmp_path: Path) -> None:
    """A balance fault for 3 minutes fires the alert after 1; a quota or night pause never does."""
    series = 'loa_zalo_route_paused{{instance="w1",reason="{}"}}'
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": series.format("balance"), "values": "0 1 1 1 0"},
            {"series": series.format("quota"), "values": "1 1 1 1 1"},
            {"series": series.format("night"), "values": "1 1 1 1 1"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "LoaZaloRouteStopped", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "LoaZaloRouteStopped",
             "exp_alerts": [firing("LoaZaloRouteStopped", reason="balance")]},
            {"eval_time": "4m", "alertname": "LoaZaloRouteStopped", "exp_alerts": []},
        ],
    }])


def test_the_zalo_token_alert_fires_for_an_old_refresh_token_or_failing_renewals(
        tmp_path: Path) -> None:
    """A refresh token past 40 days fires after 10 minutes, so do renewals failing for 10
    minutes; a failure cured at the next try does not."""
    day = 86400
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": 'loa_zalo_refresh_token_age_seconds{instance="w1"}',
             "values": f"{39 * day}+60x30"},
            {"series": 'loa_zalo_token_renewal_failing{instance="w1"}',
             "values": "0 1 0 0 0 0 0 0 0 0 0 0 0 0 0"},
        ],
        "alert_rule_test": [
            {"eval_time": "14m", "alertname": "LoaZaloRefreshTokenAgeing", "exp_alerts": []},
        ],
    }, {
        "interval": "1m",
        "input_series": [
            {"series": 'loa_zalo_refresh_token_age_seconds{instance="w1"}',
             "values": f"{41 * day}+60x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "LoaZaloRefreshTokenAgeing", "exp_alerts": []},
            {"eval_time": "11m", "alertname": "LoaZaloRefreshTokenAgeing",
             "exp_alerts": [firing("LoaZaloRefreshTokenAgeing")]},
        ],
    }, {
        "interval": "1m",
        "input_series": [
            {"series": 'loa_zalo_refresh_token_age_seconds{instance="w1"}',
             "values": f"{day}+60x30"},
            {"series": 'loa_zalo_token_renewal_failing{instance="w1"}', "values": "1+0x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "LoaZaloRefreshTokenAgeing", "exp_alerts": []},
            {"eval_time": "11m", "alertname": "LoaZaloRefreshTokenAgeing",
             "exp_alerts": [firing("LoaZaloRefreshTokenAgeing")]},
        ],
    }])


def test_the_facebook_alerts_fire_for_a_stopped_page_and_a_blocked_post(tmp_path: Path) -> None:
    """A page stopped for its token for 3 minutes fires after 1 (one worker saying so is
    enough); a blocked post fires at once and no longer once 30 minutes have passed."""
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": 'loa_facebook_page_stopped{instance="w1",page="ha-long",reason="token"}',
             "values": "0 1 1 1 0"},
            {"series": 'loa_facebook_page_stopped{instance="w2",page="ha-long",reason="token"}',
             "values": "0 0 0 0 0"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "LoaFacebookPageStopped", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "LoaFacebookPageStopped",
             "exp_alerts": [firing("LoaFacebookPageStopped", page="ha-long", reason="token")]},
            {"eval_time": "4m", "alertname": "LoaFacebookPageStopped", "exp_alerts": []},
        ],
    }, {
        "interval": "1m",
        "input_series": [
            {"series": 'loa_facebook_alerts_total{instance="w1",reason="blocked"}',
             "values": "0 0 1 1+0x40"},
            {"series": 'loa_facebook_alerts_total{instance="w1",reason="token"}',
             "values": "0 1 2 3+0x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "LoaFacebookAlert", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "LoaFacebookAlert",
             "exp_alerts": [firing("LoaFacebookAlert", reason="blocked")]},
            {"eval_time": "40m", "alertname": "LoaFacebookAlert", "exp_alerts": []},
        ],
    }])


def test_the_cell_broadcast_alerts_fire_for_a_stopped_carrier_and_failing_cancels(
        tmp_path: Path) -> None:
    """A carrier stopped for its credentials for 3 minutes fires after 1; Cancels failing for
    2 minutes fire; a refused document fires at once and no longer after 30 minutes."""
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": 'loa_cell_broadcast_carrier_stopped{instance="w1",carrier="viettel",'
                       'reason="credentials"}', "values": "0 1 1 1 0"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "LoaCellBroadcastCarrierStopped",
             "exp_alerts": []},
            {"eval_time": "3m", "alertname": "LoaCellBroadcastCarrierStopped",
             "exp_alerts": [firing("LoaCellBroadcastCarrierStopped", carrier="viettel",
                                   reason="credentials")]},
            {"eval_time": "4m", "alertname": "LoaCellBroadcastCarrierStopped",
             "exp_alerts": []},
        ],
    }, {
        "interval": "1m",
        "input_series": [
            {"series": 'loa_cell_broadcast_cancel_failures_total{instance="w1",'
                       'carrier="mobifone"}', "values": "0 1 2 3 4 5 6+0x20"},
            {"series": 'loa_cell_broadcast_alerts_total{instance="w1",reason="rejected"}',
             "values": "0 0 1 1+0x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "LoaCellBroadcastCancelFailing", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "LoaCellBroadcastCancelFailing",
             "exp_alerts": [firing("LoaCellBroadcastCancelFailing", carrier="mobifone")]},
            {"eval_time": "20m", "alertname": "LoaCellBroadcastCancelFailing",
             "exp_alerts": []},
            {"eval_time": "3m", "alertname": "LoaCellBroadcastRejected",
             "exp_alerts": [firing("LoaCellBroadcastRejected", reason="rejected")]},
            {"eval_time": "40m", "alertname": "LoaCellBroadcastRejected", "exp_alerts": []},
        ],
    }])


def test_the_loudspeaker_alerts_fire_for_a_stopped_system_and_missing_speech(
        tmp_path: Path) -> None:
    """A system stopped for its token for 3 minutes fires after 1 (one worker saying so is
    enough); speech that cannot be run fires at once and no longer once 15 minutes have
    passed."""
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": 'loa_loudspeaker_system_stopped{instance="w1",system="dongtrieu",'
                       'reason="token"}', "values": "0 1 1 1 0"},
            {"series": 'loa_loudspeaker_system_stopped{instance="w2",system="dongtrieu",'
                       'reason="token"}', "values": "0 0 0 0 0"},
            {"series": 'loa_loudspeaker_alerts_total{instance="w1",reason="speech"}',
             "values": "0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "LoaLoudspeakerSystemStopped", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "LoaLoudspeakerSystemStopped",
             "exp_alerts": [firing("LoaLoudspeakerSystemStopped", system="dongtrieu",
                                   reason="token")]},
            {"eval_time": "5m", "alertname": "LoaLoudspeakerSystemStopped", "exp_alerts": []},
            {"eval_time": "2m", "alertname": "LoaLoudspeakerSpeechFailing",
             "exp_alerts": [firing("LoaLoudspeakerSpeechFailing")]},
            {"eval_time": "20m", "alertname": "LoaLoudspeakerSpeechFailing", "exp_alerts": []},
        ],
    }])


def test_the_portal_alerts_fire_for_a_stopped_site_at_once_and_a_down_one_after_10_minutes(
        tmp_path: Path) -> None:
    """A site stopped for its credentials fires after 1 minute (one worker saying so is
    enough); a site down fires after 10; a site throttled never does."""
    series = 'loa_portal_site_paused{{instance="{}",site="{}",reason="{}"}}'
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": series.format("w1", "qn-portal", "credentials"), "values": "0 1 1 1 0"},
            {"series": series.format("w2", "qn-portal", "credentials"), "values": "0 0 1 1 0"},
            {"series": series.format("w1", "dichvucong", "down"), "values": "1x12"},
            {"series": series.format("w1", "dichvucong", "throttle"), "values": "1x12"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "LoaPortalSiteStopped", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "LoaPortalSiteStopped", "exp_alerts": [
                firing("LoaPortalSiteStopped", site="qn-portal", reason="credentials")]},
            {"eval_time": "4m", "alertname": "LoaPortalSiteStopped", "exp_alerts": []},
            {"eval_time": "9m", "alertname": "LoaPortalSiteDown", "exp_alerts": []},
            {"eval_time": "11m", "alertname": "LoaPortalSiteDown", "exp_alerts": [
                firing("LoaPortalSiteDown", site="dichvucong")]},
        ],
    }])


def test_the_wifi_alerts_fire_for_a_refusing_a_rejecting_and_a_lagging_controller(
        tmp_path: Path) -> None:
    """Refusing: one process (the one pushing) saying so for 2 minutes is enough, and it ends
    when the controller takes pushes again; a rejected notice fires at once; a controller
    behind fires after 15 minutes."""
    promtool_test(tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": 'loa_wifi_refused{instance="w1",controller="hue-park"}',
             "values": "0 1 1 1 1 0"},
            {"series": 'loa_wifi_refused{instance="w2",controller="hue-park"}',
             "values": "0 0 0 0 0 0"},
            {"series": 'loa_wifi_push_total{instance="w1",controller="bai-chay",'
                       'outcome="rejected"}', "values": "0 0 1 1 1 1"},
            {"series": 'loa_wifi_lag{instance="w1",controller="bai-chay"}', "values": "0 2x20"},
            {"series": 'loa_wifi_lag{instance="w2",controller="bai-chay"}', "values": "0 2x20"},
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "LoaWifiControllerRefusing", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "LoaWifiControllerRefusing",
             "exp_alerts": [firing("LoaWifiControllerRefusing", controller="hue-park")]},
            {"eval_time": "5m", "alertname": "LoaWifiControllerRefusing", "exp_alerts": []},
            {"eval_time": "1m", "alertname": "LoaWifiNoticeRejected", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "LoaWifiNoticeRejected",
             "exp_alerts": [firing("LoaWifiNoticeRejected", controller="bai-chay")]},
            {"eval_time": "10m", "alertname": "LoaWifiControllerBehind", "exp_alerts": []},
            {"eval_time": "17m", "alertname": "LoaWifiControllerBehind",
             "exp_alerts": [firing("LoaWifiControllerBehind", controller="bai-chay")]},
        ],
    }])
