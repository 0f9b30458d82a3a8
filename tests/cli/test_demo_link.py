"""`portalflow demo` ends with one accept link that `portalflow serve` on its database opens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from portalflow.config import Settings
from portalflow.web.app import create_app


def test_the_demo_prints_an_accept_link_that_the_served_app_opens(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTALFLOW_")}
    env["COLUMNS"] = "400"  # keep Rich from wrapping the link
    result = subprocess.run(
        [sys.executable, "-m", "portalflow.cli", "demo", "--contacts", "50"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    serve = re.search(r"PORTALFLOW_VAR_DIR=(\S+) portalflow serve", result.stdout)
    # On a line of its own, whole: the output must let a newcomer copy it.
    link = re.search(
        r"^  (http://localhost:8000/portal/\S+/accept\?token=\S+)$", result.stdout, re.MULTILINE
    )
    assert serve and link, result.stdout
    # What `portalflow serve` builds from that environment (its default port is 8000).
    settings = Settings.from_env({"PORTALFLOW_VAR_DIR": serve.group(1)})
    with TestClient(create_app(settings)) as client:
        parts = urlsplit(link.group(1))
        page = client.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200 and "Accept invitation" in page.text
