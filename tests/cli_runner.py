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


def flat(output: str) -> str:
    """Printed output as one line: Rich wraps errors in a box as wide as the terminal."""
    return " ".join(output.replace("│", " ").split())
