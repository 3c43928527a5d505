"""Build the annotated site: one HTML page per :class:`refvae.pages.Page`, the tests they cite, an index.

:func:`build_site` writes, into one directory, with no network needed to build or to read it:

- ``<slug>.html`` for every page: its introduction (the module docstring), then, for each section, the docstring
  beside the ``def`` line and each comment block beside the code it introduces; every code block carries the
  file and line numbers it shows (``data-file``, ``data-first``, ``data-last``), so a test can hold it to the file;
- ``tests.html``: every test a page cites, shown the same way, each equation's check one click away;
- ``index.html``: the pages, then docs/reading-guide.md with each function it names linked to the page showing it;
- ``figures/`` (the docs' figures the pages show) and ``style.css``.

Every file is written atomically. A directory that already holds files is refused unless ``force``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import atomic_file
from . import registered_pages
from .source import SourceError, module_docstring, read_unit, segment_text
from .text import MathError, block_html

__all__ = ["PagesError", "SiteMap", "build_site", "code_block_html", "find_root", "site_map"]

READING_GUIDE = "docs/reading-guide.md"
STYLE = Path(__file__).with_name("style.css")


class PagesError(ValueError):
    """The site cannot be built as asked (one line: what was wrong and how to fix it)."""


def find_root(root=None) -> Path:
    """The repository the pages are built from: ``root``, else the one holding this package, else the current
    directory; it must hold the sources and docs/reading-guide.md (an installed copy has no docs/ or tests/)."""
    candidates = [Path(root)] if root else [Path(__file__).resolve().parents[2], Path.cwd()]
    for candidate in candidates:
        if (candidate / READING_GUIDE).is_file() and (candidate / "refvae").is_dir() and (candidate / "tests").is_dir():
            return candidate.resolve()
    raise PagesError(f"no refvae source tree (with {READING_GUIDE} and tests/) at {candidates[0]}: run from a clone "
                     "of the repository (pip install -e .), or pass --root pointing at one")


def _anchor(name: str) -> str:
    """An HTML id for a function or test name ("rbm/gradients.py::free_energy" -> "rbm-gradients-py--free_energy")."""
    return re.sub(r"[^A-Za-z0-9_]", "-", name)


def _split(source: str):
    path, _, qualname = source.partition("::")
    return path, qualname.replace("::", ".")


@dataclass
class SiteMap:
    """Where everything is shown: ``functions`` "path::qualname" -> href, ``files`` path -> href of the first page
    about that file, ``tests`` test name -> href, ``cited_by`` test name -> [(page title, href)]."""

    functions: dict
    files: dict
    tests: dict
    cited_by: dict

    def link_code(self, name: str):
        """The href of the page showing the code span ``name`` ("file.py::function", "file.py"), or None."""
        name = name.strip()
        return self.functions.get(name) or self.files.get(name)


def site_map(pages) -> SiteMap:
    functions, files, tests, cited_by = {}, {}, {}, {}
    for page in pages:
        files.setdefault(page.intro, f"{page.slug}.html")
        for section in page.sections:
            href = f"{page.slug}.html#{_anchor(section.source)}"
            functions.setdefault(section.source, href)
            files.setdefault(_split(section.source)[0], f"{page.slug}.html")
            for test in section.tests:
                tests.setdefault(test, f"tests.html#{_anchor(test)}")
                cited_by.setdefault(test, []).append((page.title, href))
    return SiteMap(functions, files, tests, cited_by)


# ---- pieces of a page ----------------------------------------------------------------------------------------
def _highlight(code: str) -> str:
    """Python source as HTML highlighted by Pygments; the text is unchanged (stripnl and ensurenl off)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    out = highlight(code, PythonLexer(stripnl=False, ensurenl=False, stripall=False), HtmlFormatter(nowrap=True))
    return out[:-1] if out.endswith("\n") and not code.endswith("\n") else out


def code_block_html(unit, segment) -> str:
    """The code of one segment: line numbers beside a <pre> whose text is exactly the file's lines."""
    if segment.last < segment.first:
        return ""
    numbers = "\n".join(str(n) for n in range(segment.first, segment.last + 1))
    return (f'<div class="listing"><pre class="lines" aria-hidden="true">{numbers}</pre>'
            f'<pre class="src" data-file="{html.escape(unit.path)}" data-first="{segment.first}" '
            f'data-last="{segment.last}"><code>{_highlight(segment_text(unit, segment))}</code></pre></div>')


def _row(doc_html: str, code_html: str, cls: str = "row") -> str:
    return f'<div class="{cls}"><div class="doc">{doc_html}</div><div class="code">{code_html}</div></div>'


def _unit_html(root: Path, source: str, smap: SiteMap, tests=(), figures=(), back=()) -> str:
    """One function (or test) as rows: the docstring beside its header, each comment beside its code."""
    path, qualname = _split(source)
    unit = read_unit(root, path, qualname)
    try:
        return _unit_rows(unit, source, smap, tests, figures, back)
    except MathError as err:
        raise PagesError(f"{source}: {err}") from err


def _unit_rows(unit, source, smap, tests, figures, back) -> str:
    path, qualname = unit.path, unit.qualname
    after = _check_badge(smap.tests.get(tests[0]) if tests else None)
    link = smap.link_code
    head = [f'<h2 id="{_anchor(source)}"><code>{html.escape(qualname)}</code></h2>',
            f'<p class="where">{html.escape(path)}, lines {unit.first}&#8211;{unit.last}</p>',
            block_html(unit.docstring, link, after_equation=after)]
    if tests:
        items = ", ".join(f'<a href="{smap.tests[t]}"><code>{html.escape(t.split("::")[-1])}</code></a>'
                          for t in tests)
        head.append(f'<p class="checks">Checked by {items}.</p>')
    for f in figures:
        src = f"figures/{_figure_name(f.path)}"
        head.append(f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(f.caption)}"></a>'
                    f"<figcaption>{html.escape(f.caption)}</figcaption></figure>")
    for title, href in back:
        head.append(f'<p class="checks">Cited on <a href="{href}">{html.escape(title)}</a>.</p>')
    rows = [_row("\n".join(head), code_block_html(unit, unit.segments[0]), "row unit-head")]
    for segment in unit.segments[1:]:
        doc = block_html("\n".join(segment.commentary), link, after_equation=after)
        if "<math" in doc and 'class="check"' not in doc:      # an equation in a comment: its test beside it
            doc = doc[:-4] + after + "</p>" if doc.endswith("</p>") else doc + f"<p>{after}</p>"
        rows.append(_row(doc, code_block_html(unit, segment)))
    return f'<section class="unit">{"".join(rows)}</section>'


def _check_badge(href) -> str:
    """The link from an equation to the test that checks it ("" when the section cites none)."""
    if not href:
        return ""
    return f' <a class="check" href="{href}" title="the test that checks this equation">&#10003; test</a>'


def _figure_name(path: str) -> str:
    return path.replace("docs/results/", "").replace("/", "_")


def _nav(pages, current: str) -> str:
    links = [("index.html", "Contents")] + [(f"{p.slug}.html", p.title.split(":")[0]) for p in pages] + \
            [("tests.html", "The checks")]
    items = "".join(f'<a href="{href}"{" aria-current=page" if href == current else ""}>{html.escape(t)}</a>'
                    for href, t in links)
    return f"<nav>{items}</nav>"


def _document(title: str, nav: str, body: str) -> str:
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)} &#8212; refvae</title><link rel="stylesheet" href="style.css"></head>\n'
            f"<body>{nav}<main>\n{body}\n</main><footer>Built by <code>refvae pages</code> from refvae's own source: "
            "every code block is the file's lines, every equation MathML.</footer></body></html>\n")


# ---- the pages -----------------------------------------------------------------------------------------------
def page_html(root: Path, page, pages, smap: SiteMap) -> str:
    # the introduction's equations (the model as the paper writes it) link to the first test the page cites
    first_test = next((smap.tests[t] for s in page.sections for t in s.tests), None)
    try:
        intro = block_html(module_docstring(root, page.intro), smap.link_code,
                           after_equation=_check_badge(first_test))
    except MathError as err:
        raise PagesError(f"{page.intro} (its module docstring): {err}") from err
    body = [f"<h1>{html.escape(page.title)}</h1>",
            f'<div class="intro"><p class="where">{html.escape(page.intro)}</p>{intro}</div>']
    body += [_unit_html(root, s.source, smap, s.tests, s.figures) for s in page.sections]
    return _document(page.title, _nav(pages, f"{page.slug}.html"), "\n".join(body))


def tests_html(root: Path, pages, smap: SiteMap) -> str:
    body = ["<h1>The checks</h1>", '<div class="intro"><p>Every test a page cites, as it is in tests/: the '
            "gradient checks (float64 central differences), the comparisons with enumeration and with independent "
            "libraries, that prove the equations beside the code. <code>python -m pytest</code> runs them.</p></div>"]
    body += [_unit_html(root, test, smap, back=smap.cited_by[test]) for test in smap.tests]
    return _document("The checks", _nav(pages, "tests.html"), "\n".join(body))


def index_html(root: Path, pages, smap: SiteMap) -> str:
    items = "".join(f'<li><a href="{p.slug}.html">{html.escape(p.title)}</a> <span class="where">'
                    f"{html.escape(p.intro)}</span></li>" for p in pages)
    guide = block_html((root / READING_GUIDE).read_text(encoding="utf-8"), smap.link_code,
                       link_href=lambda href: _guide_link(href, smap))
    body = ["<h1>refvae: the annotated reference</h1>",
            '<div class="intro"><p>Each page puts a model\'s mathematics, in the papers\' order, beside the code '
            "that computes it: the commentary and equations on the left come from the docstrings and comments of "
            "the source, the code on the right is the source itself, with its line numbers. Each equation links to "
            "the test that checks it.</p>", f"<ol>{items}</ol></div>", f'<div class="guide">{guide}</div>']
    return _document("Contents", _nav(pages, "index.html"), "\n".join(body))


def _guide_link(href: str, smap: SiteMap):
    """A link of the reading guide: kept when external, pointed at a page when it names a shown file, else None."""
    if href.startswith(("http://", "https://")):
        return href
    return smap.link_code(href.replace("../", "", 1))


def build_site(out, root=None, force: bool = False, pages=None) -> list:
    """Write the site into ``out``; returns the files written. ``pages``: default every registered page."""
    try:    # the equations become MathML, the code is highlighted, as the pages are built
        import latex2mathml  # noqa: F401
        import pygments  # noqa: F401
    except ImportError as err:
        raise PagesError(f"refvae pages needs {err.name} (LaTeX to MathML, and code highlighting): "
                         "pip install 'refvae[pages]'") from err
    root = find_root(root)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PagesError(f"--out {out} is a file: choose a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise PagesError(f"--out {out} already holds files: choose another directory, or pass --force to replace "
                         "the site there")
    pages = tuple(pages if pages is not None else registered_pages())
    figures = sorted({f.path for p in pages for s in p.sections for f in s.figures})
    for figure in figures:          # everything is checked before anything is written
        if not (root / figure).is_file():
            raise PagesError(f"a page shows the figure {figure}, which does not exist: make it or drop it")
    smap = site_map(pages)
    try:
        documents = {f"{p.slug}.html": page_html(root, p, pages, smap) for p in pages}
        documents["tests.html"] = tests_html(root, pages, smap)
        documents["index.html"] = index_html(root, pages, smap)
    except SourceError as err:
        raise PagesError(f"a page names what the source does not have: {err}") from err
    written = [_write(out / name, text.encode("utf-8")) for name, text in documents.items()]
    written.append(_write(out / "style.css", STYLE.read_bytes()))
    written += [_write(out / "figures" / _figure_name(f), (root / f).read_bytes()) for f in figures]
    return written


def _write(path: Path, data: bytes) -> Path:
    with atomic_file(path) as f:
        f.write(data)
    return path
