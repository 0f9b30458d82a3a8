"""The README carries the outcome table exactly as the code defines it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from portalflow.cli import app
from portalflow.pipelines.delivery.outcome_table import outcome_table_markdown
from portalflow.pipelines.delivery.outcomes import OUTCOME_DESCRIPTIONS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_has_the_current_outcome_table() -> None:
    assert outcome_table_markdown() in README.read_text(encoding="utf-8"), (
        "the README's outcome table is stale: paste `portalflow outcomes --markdown` into it"
    )


def test_every_code_in_the_table_has_a_meaning() -> None:
    table = outcome_table_markdown()
    for line in table.splitlines()[2:]:
        code = line.split(" | ")[3]
        assert code in OUTCOME_DESCRIPTIONS or code == "as the error", code


def test_the_outcomes_command_prints_it() -> None:
    result = CliRunner().invoke(app, ["outcomes", "--markdown"])
    assert result.exit_code == 0 and result.output == outcome_table_markdown()
