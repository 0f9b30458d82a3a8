"""monitoring/: the Grafana dashboard asks only for metrics that exist, and Prometheus
scrapes what compose's `monitoring` profile runs (the web app and every worker)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARD = json.loads((MONITORING / "grafana" / "dashboards" / "portalflow.json").read_text())
PROMETHEUS = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
SERVICES = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
# Dramatiq's Prometheus middleware (dramatiq/middleware/prometheus.py), served on :9191.
DRAMATIQ_METRICS = {
    "dramatiq_messages_total",
    "dramatiq_message_errors_total",
    "dramatiq_message_retries_total",
    "dramatiq_message_rejects_total",
    "dramatiq_messages_inprogress",
    "dramatiq_delayed_messages_inprogress",
    "dramatiq_message_duration_milliseconds_bucket",
}
PROMQL_WORDS = {"sum", "rate", "max", "by", "le", "histogram_quantile", "delta", "deriv"}


def dashboard_metrics() -> set[str]:
    names = set()
    for panel in DASHBOARD["panels"]:
        for target in panel["targets"]:
            expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", target["expr"])
            names |= {w for w in re.findall(r"[a-z_]+", expr) if w not in PROMQL_WORDS}
    return names - {"actor_name", "queue_name", "queue", "status", "state", "channel"}


def test_the_dashboard_reads_only_metrics_that_exist(session: Session) -> None:
    url = session.get_bind().url.render_as_string(hide_password=False)
    with TestClient(create_app(Settings(database_url=url))) as client:
        exposed = {
            sample.name
            for family in text_string_to_metric_families(client.get("/metrics").text)
            for sample in family.samples
        } | {family.name for family in text_string_to_metric_families(client.get("/metrics").text)}
    # Without Redis or samples some families are absent; their names are in ops_metrics.py.
    source = (ROOT / "src" / "web" / "ops_metrics.py").read_text()
    ours = {name for name in dashboard_metrics() if name.startswith("portalflow_")}
    assert ours, "the dashboard shows none of portalflow's metrics"
    assert all(name in exposed or f'"{name}"' in source for name in ours), ours - exposed
    assert dashboard_metrics() - ours <= DRAMATIQ_METRICS
    assert {"portalflow_workers", "portalflow_dead_letters"} <= ours
    assert DASHBOARD["uid"] and len({p["id"] for p in DASHBOARD["panels"]}) == len(
        DASHBOARD["panels"]
    )
    datasource = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert all(p["datasource"]["uid"] == datasource["uid"] for p in DASHBOARD["panels"])


def test_prometheus_scrapes_the_web_app_and_every_worker() -> None:
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    [web_target] = jobs["portalflow-web"]["static_configs"][0]["targets"]
    host, _, port = web_target.partition(":")
    assert host == "web" and f"{port}:{port}" in SERVICES["web"]["ports"]
    assert jobs["portalflow-web"]["metrics_path"] == "/metrics"
    [workers] = jobs["portalflow-workers"]["dns_sd_configs"]
    assert workers["names"] == ["worker"] and workers["type"] == "A"  # every replica
    assert workers["port"] == 9191  # dramatiq_prom_port's default
    assert SERVICES["worker"]["environment"]["dramatiq_prom_db"]


def test_the_monitoring_profile_runs_prometheus_and_grafana_on_the_repo_files() -> None:
    prometheus, grafana = SERVICES["prometheus"], SERVICES["grafana"]
    assert prometheus["profiles"] == ["monitoring"] == grafana["profiles"]
    mounts = prometheus["volumes"] + grafana["volumes"]
    for source in (m.split(":")[0] for m in mounts if m.startswith("./")):
        assert (ROOT / source).exists(), source
    config = next(m for m in prometheus["volumes"] if m.startswith("./monitoring/prometheus.yml"))
    assert f"--config.file={config.split(':')[1]}" in prometheus["command"]
    provider = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "dashboards" / "portalflow.yml").read_text()
    )["providers"][0]
    dashboards = next(m for m in grafana["volumes"] if "dashboards:" in m).split(":")[1]
    assert provider["options"]["path"] == dashboards


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    checked = subprocess.run(
        [promtool, "check", "config", str(MONITORING / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
