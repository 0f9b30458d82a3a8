"""compose.yaml and the Dockerfile keep their production promises (read, not run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import portalflow.workers  # noqa: F401  (declares every actor)
from portalflow.workers import broker

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
SECRETS = (
    "PORTALFLOW_SECRET_KEY",
    "PORTALFLOW_DB_PASSWORD",
    "PORTALFLOW_ADMIN_TOKEN",
    "PORTALFLOW_RABBITMQ_PASSWORD",
)
# Actors whose time limit may exceed the worker's shutdown timeout, because a run cut by a
# stop is taken up again: transfers resume from their last committed batch; reconciliation
# and retention are whole passes that the next run (or the redelivery) repeats.
RESUMABLE = {"transfer_and_delete", "reconcile_licences", "purge_old_provider_events"}
CLOSING_SECONDS = 30  # broker close and log flush after the last message


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "image" in s))
def test_every_image_is_pinned_to_an_exact_version(name: str) -> None:
    image = SERVICES[name]["image"]
    if "build" in SERVICES[name]:
        return  # our own image, built here
    _, _, tag = image.partition(":")
    assert tag and tag != "latest", image
    # major.minor at least (postgres names its releases 16.6), nothing floating.
    assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[a-z]+)?", tag), f"{image}: not an exact version"


def test_the_dockerfile_pins_its_base_installs_pinned_dependencies_first_and_checks() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M)
    assert base and re.match(r"python:\d+\.\d+\.\d+-slim$", base.group(1))
    assert dockerfile.index("COPY constraints.txt") < dockerfile.index("COPY src")
    assert "pip install -r constraints.txt" in dockerfile
    assert re.search(r"^HEALTHCHECK .*\n?.*portalflow\", \"healthcheck", dockerfile, re.M)


def test_constraints_pin_every_runtime_dependency() -> None:
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    pinned = {canonicalize_name(name) for name in pins}
    direct = [Requirement(r) for r in requires("portalflow") or []]
    runtime = {canonicalize_name(r.name) for r in direct if not r.marker}
    assert runtime <= pinned, runtime - pinned
    assert all(re.fullmatch(r"[\w.+!-]+", version) for version in pins.values())


@pytest.mark.parametrize("variable", SECRETS)
def test_every_secret_is_required(variable: str) -> None:
    text = (ROOT / "compose.yaml").read_text()
    uses = re.findall(r"\$\{" + variable + r"(:?[?\-][^}]*)?\}", text)
    assert uses, f"{variable} is not used"
    assert all(use.startswith(":?") for use in uses), f"{variable} has a default: {uses}"


def test_no_default_secret_is_left() -> None:
    text = (ROOT / "compose.yaml").read_text()
    assert "change-me" not in text
    assert not re.search(r"PASS(WORD)?: [a-z]", text)


@pytest.mark.parametrize("name", ["worker", "scheduler", "web"])
def test_long_running_services_have_a_healthcheck(name: str) -> None:
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[:4] == ["CMD", "portalflow", "healthcheck", name]


def test_redis_is_bounded_and_refuses_rather_than_evicts() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--maxmemory") + 1]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_stop_grace_period_covers_the_shutdown_timeout_which_covers_the_time_limits() -> None:
    worker = SERVICES["worker"]
    command = worker["command"]
    shutdown_ms = int(command[command.index("--worker-shutdown-timeout") + 1])
    grace = seconds(worker["stop_grace_period"])
    assert grace >= shutdown_ms / 1000 + CLOSING_SECONDS
    limits = {actor.actor_name: actor.options["time_limit"] for actor in broker._actors}
    too_long = {name for name, limit in limits.items() if limit > shutdown_ms}
    assert too_long <= RESUMABLE, f"cut by a stop, not known to resume: {too_long - RESUMABLE}"
    assert max(limits[name] for name in limits if name not in RESUMABLE) == shutdown_ms
