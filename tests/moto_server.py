"""moto in server mode: a real HTTP endpoint speaking the SES APIs, in a thread."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.server import ThreadedMotoServer


@contextmanager
def running_moto_server() -> Iterator[str]:
    """Start moto on a free port of 127.0.0.1 and yield its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset(endpoint: str) -> None:
    """Forget every identity and message moto holds."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


def sent_raw_messages(endpoint: str) -> list[dict[str, Any]]:
    """The raw messages SES accepted, as moto's dashboard data shows them."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5) as response:
        data = json.load(response)
    return list(data.get("ses", {}).get("RawMessage", []))
