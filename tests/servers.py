"""Reaching the real servers tests need: skip with a hint locally, fail under CI."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    "RabbitMQ": "rabbitmq-server -detached",
}


def require_server(name: str, host: str, port: int) -> None:
    """Skip (or, with CI=true, fail) when nothing answers on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        message = f"{name} is not answering on {host}:{port} ({exc}); start it with: " + (
            START_HINTS.get(name, "its usual service command")
        )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


BINARY_HINTS = {
    "smtp-sink": "apt-get install --no-install-recommends postfix",
    "chromium": "apt-get install --no-install-recommends chromium chromium-driver",
    "chromedriver": "apt-get install --no-install-recommends chromium chromium-driver",
    "redis-server": "apt-get install redis-server",
    "pg_ctl": "apt-get install postgresql",
}


def require_binary(name: str, path: str | None = None) -> str:
    """The path of a program the test runs; skip (or, with CI=true, fail) when it is missing."""
    found = path if path and os.access(path, os.X_OK) else shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed; install it with: " + BINARY_HINTS.get(
        name, "your package manager"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
