"""The layering rules of DESIGN.md, checked on the source: pipelines know no broker."""

from __future__ import annotations

import re
from pathlib import Path

import portalflow

SOURCE = Path(portalflow.__file__).parent
BROKER_IMPORT = re.compile(r"^\s*(from|import)\s+(dramatiq|portalflow\.workers)\b")


def test_pipelines_import_neither_dramatiq_nor_the_workers() -> None:
    offenders = [
        f"{path.relative_to(SOURCE)}:{number}"
        for path in (SOURCE / "pipelines").rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if BROKER_IMPORT.search(line)
    ]
    assert offenders == []
