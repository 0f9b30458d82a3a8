"""Driving the real `portalflow` command in-process."""

from __future__ import annotations

from click.testing import Result
from typer.testing import CliRunner

from portalflow.cli import app


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def run(*args: str) -> tuple[int, str]:
    """Exit code and everything printed."""
    result = invoke(*args)
    return result.exit_code, result.output
