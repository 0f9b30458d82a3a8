"""`portalflow worker` starts Dramatiq with a prefetch of one message per thread."""

from __future__ import annotations

import os
import sys

import pytest

from ..cli_runner import run

PREFETCH = "dramatiq_queue_prefetch"  # Dramatiq's own variable, lower case


class Exec(Exception):
    """Raised in place of the real exec, carrying what would have run."""

    def __init__(self, argv: list[str], prefetch: str | None) -> None:
        super().__init__(argv)
        self.argv = argv
        self.prefetch = prefetch


@pytest.fixture
def captured_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the process image swap (the one thing a test cannot let happen)."""

    def fake_exec(path: str, argv: list[str]) -> None:
        raise Exec(argv, os.environ.get(PREFETCH))

    monkeypatch.setattr(os, "execv", fake_exec)
    monkeypatch.setenv("PORTALFLOW_BROKER_URL", "redis://127.0.0.1:6379/15")
    # Set first, so that whatever the command sets is undone after the test.
    monkeypatch.setenv(PREFETCH, "unset")
    monkeypatch.delenv(PREFETCH)


def started(*args: str) -> Exec:
    from typer.testing import CliRunner

    from portalflow.cli import app

    result = CliRunner().invoke(app, ["worker", *args])
    assert isinstance(result.exception, Exec), result.output
    return result.exception


@pytest.mark.usefixtures("captured_exec")
def test_prefetch_defaults_to_one_message_per_thread() -> None:
    started_with = started("--processes", "3", "--threads", "6")
    assert started_with.argv[:4] == [sys.executable, "-m", "dramatiq", "portalflow.workers"]
    assert started_with.argv[4:] == ["--processes", "3", "--threads", "6"]
    assert started_with.prefetch == "6"


@pytest.mark.usefixtures("captured_exec")
def test_prefetch_can_be_chosen_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    assert started("--threads", "8", "--prefetch", "2").prefetch == "2"
    monkeypatch.setenv(PREFETCH, "5")
    assert started("--threads", "8", "--prefetch", "2").prefetch == "5"


def test_without_a_broker_url_it_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTALFLOW_BROKER_URL", raising=False)
    code, output = run("worker")
    assert code != 0
    assert "PORTALFLOW_BROKER_URL is not set" in " ".join(output.split())


@pytest.mark.usefixtures("captured_exec")
def test_a_worker_group_can_take_only_some_queues() -> None:
    started_with = started("--threads", "4", "-Q", "crm-events", "--queue", "invitations")
    assert started_with.argv[4:] == [
        "--processes",
        "2",
        "--threads",
        "4",
        "--queues",
        "crm-events",
        "invitations",
    ]


@pytest.mark.usefixtures("captured_exec")
def test_an_unknown_queue_is_refused_with_the_known_ones() -> None:
    code, output = run("worker", "-Q", "crm-event")
    assert code != 0
    text = " ".join(output.split())
    assert "unknown queue crm-event" in text
    assert "crm-events" in text and "invitations" in text
