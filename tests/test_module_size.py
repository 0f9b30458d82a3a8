"""Size limits on the source: no module over 400 lines, no function over 60 (issue 14).

A module or function past the limit is a sign it holds more than one flow or concern:
split it along its meaning, not at an arbitrary line. Migrations are frozen history and
are not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import portalflow

SOURCE = Path(portalflow.__file__).parent
MIGRATIONS = SOURCE / "models" / "migrations" / "versions"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules(root: Path = SOURCE) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if MIGRATIONS not in path.parents)


def long_modules(root: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    """``path: lines`` for each module under ``root`` longer than ``limit`` lines."""
    found = []
    for path in _modules(root):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """``path:function`` -> lines, for each function (or method) under ``root`` over ``limit``."""
    found = {}
    for path in _modules(root):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found[f"{path.relative_to(root)}:{node.name}"] = lines
    return found


def test_no_module_is_over_400_lines() -> None:
    assert long_modules(SOURCE) == []


def test_no_function_is_over_60_lines() -> None:
    found = long_functions(SOURCE)
    assert found == {}


def test_the_checks_see_a_long_module_and_a_long_function(tmp_path: Path) -> None:
    def function(name: str, lines: int) -> str:  # a def line, then lines - 1 statements
        return f"def {name}():\n" + "".join(f"    x = {n}\n" for n in range(lines - 1))

    padding = "\n" * (MAX_MODULE_LINES - MAX_FUNCTION_LINES)
    (tmp_path / "long.py").write_text(function("long", MAX_FUNCTION_LINES + 1) + padding)
    (tmp_path / "short.py").write_text(function("short", MAX_FUNCTION_LINES) + padding)
    assert long_modules(tmp_path) == [f"long.py: {MAX_MODULE_LINES + 1} lines"]
    assert long_functions(tmp_path) == {"long.py:long": MAX_FUNCTION_LINES + 1}
