"""The source side of a page: one function (or class) of a source file, cut into commentary and code.

The cut is the literate-programming one of Docco and Pycco. A function's lines are, in order:

- its **header**, the ``def`` (or ``class``) line and its decorators, shown as code;
- its **docstring**, shown as commentary beside the header;
- its **body**, cut into segments: each run of full-line comments (``# ...`` alone on a line) is the commentary
  of the code that follows it, up to the next full-line comment; trailing comments (``x = 1  # ...``) stay in the
  code.

Every code block is a contiguous slice of the file, given by its first and last line numbers, so a page can be
held to the source line for line (:func:`segment_text`). Nothing here imports the file it reads: the functions are
found by :mod:`ast`.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from inspect import cleandoc
from pathlib import Path

__all__ = ["Segment", "SourceError", "Unit", "module_docstring", "read_unit", "segment_text"]


class SourceError(ValueError):
    """A page names a file or a function that does not exist."""


@dataclass(frozen=True)
class Segment:
    """One row of a page: ``commentary`` (comment lines, their ``#`` removed) beside the code of lines
    ``first``..``last`` of the file (1-based, inclusive; ``last < first`` when there is no code)."""

    commentary: tuple
    first: int
    last: int


@dataclass(frozen=True)
class Unit:
    """One function, method or class of a file: where it is (lines ``first``..``last``), its docstring (cleaned)
    and the lines it spans (``doc_lines``, (0, -1) without one), its segments, the header first. ``lines`` are the
    whole file's lines, for :func:`segment_text`."""

    path: str
    qualname: str
    first: int
    last: int
    docstring: str
    doc_lines: tuple
    segments: tuple
    lines: tuple


def _parse(path: Path):
    """(lines, tree, comment_lines) of a file, read again whenever it changes."""
    stat = path.stat()
    return _parse_version(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _parse_version(path: Path, mtime_ns: int, size: int):
    text = path.read_text(encoding="utf-8")
    # the lines whose first token is a comment (a "#" inside a string is not one)
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    comment_lines = frozenset(t.start[0] for t in tokens
                              if t.type == tokenize.COMMENT and not t.line[:t.start[1]].strip())
    return text.splitlines(), ast.parse(text, filename=str(path)), comment_lines


def module_docstring(root: Path, path: str) -> str:
    """The cleaned docstring of the file ``path`` (relative to ``root``), "" if it has none."""
    _, tree, _ = _parse(_file(root, path))
    return cleandoc(ast.get_docstring(tree, clean=False) or "")


def _file(root: Path, path: str) -> Path:
    full = (root / path).resolve()
    if not full.is_file():
        raise SourceError(f"{path} does not exist under {root}")
    return full


def _find(tree, path: str, qualname: str):
    """The def or class node named ``qualname`` ("f", "Class.method"), searching nested bodies by name."""
    node = tree
    for name in qualname.split("."):
        found = [n for n in getattr(node, "body", ()) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                         ast.ClassDef)) and n.name == name]
        if not found:
            raise SourceError(f"{path} has no function or class {qualname!r}")
        node = found[-1]
    return node


def read_unit(root: Path, path: str, qualname: str) -> Unit:
    """The function (or class) ``qualname`` of the file ``path`` (relative to ``root``), cut into segments."""
    lines, tree, comment_lines = _parse(_file(root, path))
    node = _find(tree, path, qualname)
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    body0 = node.body[0]
    has_doc = isinstance(body0, ast.Expr) and isinstance(body0.value, ast.Constant) \
        and isinstance(body0.value.value, str)
    # the header: decorators and the def line(s), up to the docstring (or the first statement)
    segments = [Segment((), first, body0.lineno - 1)]
    # the body: after the docstring (a class's methods are code of its body)
    body_first = body0.end_lineno + 1 if has_doc else body0.lineno
    segments += _cut_body(lines, comment_lines, body_first, node.end_lineno)
    docstring = cleandoc(body0.value.value) if has_doc else ""
    doc_lines = (body0.lineno, body0.end_lineno) if has_doc else (0, -1)
    return Unit(path, qualname, first, node.end_lineno, docstring, doc_lines, tuple(segments), tuple(lines))


def _uncomment(line: str) -> str:
    text = line.lstrip()[1:]
    return text[1:] if text.startswith(" ") else text


def _cut_body(lines, comment_lines, first: int, last: int) -> list:
    """Segments of lines ``first``..``last``: each run of full-line comments (line numbers in ``comment_lines``),
    then the code up to the next run."""
    segments, i = [], first
    while i <= last:
        commentary = []
        while i <= last and i in comment_lines:
            commentary.append(_uncomment(lines[i - 1]))
            i += 1
        start = i
        while i <= last and i not in comment_lines:
            i += 1
        end = i - 1
        # blank lines at either end of a run of code are shown on neither side
        while start <= end and not lines[start - 1].strip():
            start += 1
        while end >= start and not lines[end - 1].strip():
            end -= 1
        if commentary or end >= start:
            segments.append(Segment(tuple(commentary), start, end))
    return segments


def segment_text(unit: Unit, segment: Segment) -> str:
    """The code of ``segment``, exactly as the file has it (lines joined by newlines)."""
    return "\n".join(unit.lines[segment.first - 1:segment.last])
