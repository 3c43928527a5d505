"""Every file and function that docs/reading-guide.md names exists (a renamed function fails here)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "reading-guide.md"
ENTRY = re.compile(r"`([\w/]+\.py)::([\w.]+)`")


def _defined(path: Path) -> set:
    """Dotted names of the module's top-level functions and classes, and of the classes' methods."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {f"{node.name}.{item.name}" for item in node.body if isinstance(item, ast.FunctionDef)}
    return names


def test_every_named_function_exists():
    entries = ENTRY.findall(GUIDE.read_text())
    assert len(entries) >= 40
    missing = [f"{file}::{name}" for file, name in entries
               if not (ROOT / file).is_file() or name not in _defined(ROOT / file)]
    assert not missing, missing


def test_the_readme_points_to_the_guide():
    assert "docs/reading-guide.md" in (ROOT / "README.md").read_text()


def test_eight_questions_take_at_most_twelve_stops():
    """The guide's first table: eight questions a student asks, each answered by the functions it names; the
    stops (functions or files to open) add up to at most 12, and each row names at least as many functions."""
    text = GUIDE.read_text()
    table = text[text.index("## Eight questions"):text.index("## The order to read")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| question")]
    assert len(rows) == 8, rows
    stops = [int(row.rstrip(" |").rsplit("|", 1)[1]) for row in rows]
    assert sum(stops) <= 12, stops
    for row, n in zip(rows, stops):
        named = re.findall(r"`([\w/]+\.py)(?:::[\w.]+)?`", row)
        assert len(named) >= n, row
