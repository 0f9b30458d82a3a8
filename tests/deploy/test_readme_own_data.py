"""Every command of the README's "Using it on your own data" section runs as written."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from portalflow.models import DataCentre
from portalflow.pipelines.tenancy.countries import DATA_CENTRE_COUNTRIES, DEFAULT_DATA_CENTRE

from ..cli_runner import run

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def own_data_commands() -> list[str]:
    """The ``portalflow`` commands of the section's sh blocks, in order, continuations joined."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", _section("Using it on your own data"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("portalflow "):
                commands.append(line)
    return commands


def test_the_section_has_the_commands_it_should() -> None:
    commands = own_data_commands()
    assert len(commands) > 20
    assert any("examples/contacts.csv" in c for c in commands)
    assert any("examples/dlt-export.csv" in c for c in commands)


def test_every_command_runs_as_written(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the README's paths are relative to a clone's root
    for command in own_data_commands():
        args = shlex.split(command, comments=True)[1:]
        code, out = run(*args)
        assert code == 0, f"{command}\n{out}"
    code, out = run("bulk-runs", "list", "--org", "1", "--json")
    assert [r["sent"] for r in json.loads(out)["runs"]] == [3, 4, 2]
    assert len(list((cli_env / "outbox" / "sms").glob("*.json"))) == 3


def test_the_data_centre_table_is_the_code() -> None:
    text = _section("Using it on your own data")
    table = text[text.index("<!-- data-centre-table -->") :].split("\n\n")[0]
    rows = re.findall(r"^\| (.+?) \| `(\w+)` \|$", table, re.M)
    codes = [(re.sub(r"\(.*\)", "", c), dc) for c, dc in rows[:-1]]  # a note is no code
    documented = {DataCentre(dc): set(re.findall(r"\b[A-Z]{2}\b", c)) for c, dc in codes}
    assert documented == {dc: set(countries) for dc, countries in DATA_CENTRE_COUNTRIES.items()}
    assert rows[-1] == ("any other", DEFAULT_DATA_CENTRE.value)
