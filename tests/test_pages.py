"""The annotated reference (``refvae pages``): every page is held to the source it shows.

A page names functions, tests and figures; these tests fail when one does not exist, when a code block on a built
page is not exactly the file's lines, when a function's lines are not all shown, when a formula is left as raw
LaTeX or does not convert, and when an internal link or anchor does not resolve. The browser checks are in
tests/test_pages_browser.py.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("latex2mathml", reason="refvae pages needs latex2mathml: pip install -e '.[test]'")

from refvae import app  # noqa: E402
from refvae.pages import Page, Section, registered_pages  # noqa: E402
from refvae.pages.site import PagesError, build_site  # noqa: E402
from refvae.pages.source import read_unit  # noqa: E402
from refvae.pages.text import MathError, block_html, math_html  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _pages():
    app.install("program")
    return registered_pages()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build_site(out, root=ROOT, pages=_pages())
    return out


class _Site(HTMLParser):
    """What a built page holds: its code blocks (file, first, last, text), ids, hrefs, text outside code and math."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks, self.ids, self.hrefs, self.text, self.math = [], set(), [], [], 0
        self._block, self._skip = None, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "pre" and "src" in (a.get("class") or "").split():
            self._block = [a["data-file"], int(a["data-first"]), int(a["data-last"]), []]
        if tag in ("pre", "math", "code"):
            self._skip += 1
        if tag == "math":
            self.math += 1

    def handle_endtag(self, tag):
        if tag == "pre" and self._block is not None:
            self.blocks.append((*self._block[:3], "".join(self._block[3])))
            self._block = None
        if tag in ("pre", "math", "code"):
            self._skip -= 1

    def handle_data(self, data):
        if self._block is not None:
            self._block[3].append(data)
        elif not self._skip:
            self.text.append(data)


def _parse(path: Path) -> _Site:
    parser = _Site()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _code_block_mismatches(site_dir: Path) -> list:
    """Every code block of the site whose text is not the file's lines it claims to be."""
    bad = []
    for page in sorted(site_dir.glob("*.html")):
        for file, first, last, text in _parse(page).blocks:
            lines = (ROOT / file).read_text(encoding="utf-8").splitlines()
            if text != "\n".join(lines[first - 1:last]):
                bad.append(f"{page.name}: {file} lines {first}-{last}")
    return bad


def test_every_page_names_functions_tests_and_figures_that_exist():
    pages = _pages()
    assert {p.slug for p in pages} >= {"vae", "importance-weighting", "aggregate-posterior", "linear-vae",
                                       "rbm-gradients", "rbm-partition", "wakesleep", "adam", "numerics"}
    for page in pages:
        assert (ROOT / page.intro).is_file()
        for section in page.sections:
            for name in (section.source,) + tuple(section.tests):
                path, _, qualname = name.partition("::")
                assert read_unit(ROOT, path, qualname.replace("::", ".")).qualname
            for figure in section.figures:
                assert (ROOT / figure.path).is_file(), figure.path


def test_a_page_naming_a_missing_function_or_figure_fails_the_build(tmp_path):
    missing = Page("x", "X", "refvae/optim.py", (Section("refvae/optim.py::no_such_function"),))
    with pytest.raises(PagesError, match="no function or class 'no_such_function'"):
        build_site(tmp_path / "a", root=ROOT, pages=(missing,))
    missing_test = Page("x", "X", "refvae/optim.py", (Section("refvae/optim.py::SGD", tests=("tests/test_x.py::t",)),))
    with pytest.raises(PagesError, match="tests/test_x.py does not exist"):
        build_site(tmp_path / "b", root=ROOT, pages=(missing_test,))
    from refvae.pages import Figure
    no_figure = Page("x", "X", "refvae/optim.py", (Section("refvae/optim.py::SGD", figures=(Figure("no.png", "-"),)),))
    with pytest.raises(PagesError, match="no.png, which does not exist"):
        build_site(tmp_path / "c", root=ROOT, pages=(no_figure,))
    assert not (tmp_path / "c").exists()           # refused before anything was written


def test_every_section_cites_a_test_and_every_equation_links_to_one(site):
    """The promise of the pages: each equation one click from the test that checks it."""
    for page in _pages():
        for section in page.sections:
            assert section.tests, f"{section.source} cites no test"
    for path in site.glob("*.html"):
        if path.name in ("index.html", "tests.html"):
            continue
        text = path.read_text(encoding="utf-8")
        for equation in re.findall(r'<div class="equation">.*?</div>', text, flags=re.S):
            assert 'class="check"' in equation, f"{path.name}: a display equation without its test"


def test_a_formula_that_does_not_convert_names_where_it_is(tmp_path):
    root = tmp_path / "repo"
    for d in ("docs", "refvae", "tests"):
        (root / d).mkdir(parents=True)
    (root / "docs" / "reading-guide.md").write_text("# Guide\n", encoding="utf-8")
    (root / "m.py").write_text('def f():\n    r"""Bad: $\\foo{x}$."""\n    return 1\n', encoding="utf-8")
    page = Page("m", "M", "m.py", (Section("m.py::f"),))
    with pytest.raises(PagesError, match=r"^m.py::f: the formula \$\\foo\{x\}\$ leaves \\foo as text"):
        build_site(tmp_path / "out", root=root, pages=(page,))
    with pytest.raises(PagesError, match="no refvae source tree"):
        build_site(tmp_path / "out", root=tmp_path / "nowhere", pages=(page,))


def test_a_slug_is_registered_once(monkeypatch):
    import refvae.pages as pages

    monkeypatch.setattr(pages, "_PAGES", [])
    page = Page("x-page", "X", "refvae/optim.py", ())
    pages.register_pages([page])
    pages.register_pages([page])                          # the same page again: harmless
    assert [p.slug for p in pages._PAGES] == ["x-page"]
    for slug in ("x-page", "adam", "index", "tests"):
        with pytest.raises(ValueError, match=f"two pages have the slug '{slug}'"):
            pages.register_pages([Page(slug, "Other", "refvae/optim.py", ())])


def test_a_missing_dependency_is_one_line_saying_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "latex2mathml", None)
    assert app.main(["pages", "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "latex2mathml" in err and "pip install 'refvae[pages]'" in err


def test_every_code_block_is_exactly_the_files_lines(site):
    blocks = [b for page in site.glob("*.html") for b in _parse(page).blocks]
    assert len(blocks) > 200
    assert _code_block_mismatches(site) == []


def test_a_code_block_that_differs_from_the_source_is_caught(site, tmp_path):
    """The check above can fail: one character changed in one block of a copy of the site."""
    page = (site / "vae.html").read_text(encoding="utf-8")
    tampered = tmp_path / "vae.html"
    tampered.write_text(page.replace('<span class="nf">encode</span>', '<span class="nf">encod</span>', 1),
                        encoding="utf-8")
    assert page != tampered.read_text(encoding="utf-8")
    assert len(_code_block_mismatches(tmp_path)) == 1


def test_every_line_of_each_shown_function_is_on_its_page():
    """Code, docstring, commentary or blank: no line of a shown function is dropped from the page, none is shown
    twice."""
    for page in _pages():
        for section in page.sections:
            path, _, qualname = section.source.partition("::")
            unit = read_unit(ROOT, path, qualname)
            code = [n for s in unit.segments for n in range(s.first, s.last + 1)]
            assert len(code) == len(set(code)), section.source
            doc = set(range(unit.doc_lines[0], unit.doc_lines[1] + 1))
            comments = sum(len(s.commentary) for s in unit.segments)
            for n in range(unit.first, unit.last + 1):
                line = unit.lines[n - 1].strip()
                if n in doc:
                    assert n not in code, f"{section.source}: line {n} shown twice"
                    continue
                assert not line or (n in code) + line.startswith("#") == 1, \
                    f"{section.source}: line {n} is on no side of the page, or on two: {line!r}"
            assert comments == sum(unit.lines[n - 1].strip().startswith("#") for n in range(unit.first, unit.last + 1)
                                   if n not in doc)


def test_the_cut_follows_the_comments(tmp_path):
    """Docstring beside the def line; each full-line comment run beside the code below it; trailing comments stay."""
    src = tmp_path / "m.py"
    src.write_text('def f(x):\n    """Doc $x$."""\n    # first\n    y = x + 1  # stays\n\n    # second\n'
                   '    # more\n    s = """\n    # in a string, not a comment\n    """\n    return y\n', encoding="utf-8")
    unit = read_unit(tmp_path, "m.py", "f")
    assert unit.docstring == "Doc $x$."
    assert [(s.commentary, s.first, s.last) for s in unit.segments] == [
        ((), 1, 1), (("first",), 4, 4), (("second", "more"), 8, 11)]


def test_formulas_become_mathml_and_unknown_commands_fail():
    out = math_html(r"\tfrac{1}{2} \sum_j \mu_j^2", display=True)
    assert out.startswith("<math") and "<mfrac>" in out and 'display="block"' in out
    with pytest.raises(MathError, match=r"\\foo"):
        math_html(r"\foo{x}")
    doc = block_html("Text $a + b$ here.\n\n.. math::\n\n    x = \\frac{1}{2}\n\n    y = 2\n")
    assert doc.count("<math") == 3 and doc.count('class="equation"') == 2


def test_no_raw_latex_is_left_and_every_model_page_has_equations(site):
    for slug in ("vae", "importance-weighting", "aggregate-posterior", "linear-vae", "rbm-gradients",
                 "rbm-partition", "wakesleep", "adam", "numerics"):
        parsed = _parse(site / f"{slug}.html")
        text = "".join(parsed.text)
        assert not re.search(r"\\(frac|sum|mathcal|mathbb|operatorname|sigma|mu|log|langle|partial)\b", text), slug
        assert not re.search(r"\$[^$\s][^$]*\$", text), f"{slug}: an unconverted $...$"
        assert parsed.math >= 10, f"{slug}: only {parsed.math} formulas"


def test_every_internal_link_and_anchor_resolves(site):
    ids = {page.name: _parse(page).ids for page in site.glob("*.html")}
    checked = 0
    for page in site.glob("*.html"):
        for href in _parse(page).hrefs:
            if href.startswith(("http://", "https://")):
                continue
            target, _, anchor = html.unescape(href).partition("#")
            target = target or page.name
            assert (site / target).is_file(), f"{page.name}: {href}"
            if anchor:
                assert anchor in ids[target], f"{page.name}: {href}"
            checked += 1
    assert checked > 100


def test_the_index_follows_the_reading_guide_and_links_every_page(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "reading-guide.md").read_text(encoding="utf-8")
    headings = [line.lstrip("#").strip() for line in guide.splitlines() if line.startswith("#")]
    positions = [index.find(html.escape(h, quote=False).split("`")[0]) for h in headings]
    assert -1 not in positions and positions == sorted(positions)
    for page in _pages():
        assert f'href="{page.slug}.html"' in index
    # the guide's first stops are linked to the pages that show them
    assert 'href="vae.html#refvae-vae-elbo-py--negative_elbo_and_grads"' in index


def test_the_command_builds_and_refuses_to_replace_a_site(tmp_path):
    out = tmp_path / "site"
    run = [sys.executable, "-m", "refvae", "pages", "--out", str(out)]
    first = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert (out / "index.html").is_file() and (out / "style.css").is_file() and (out / "figures").is_dir()
    again = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    forced = subprocess.run(run + ["--force"], capture_output=True, text=True, cwd=ROOT)
    assert forced.returncode == 0, forced.stderr


def test_docstrings_with_latex_are_raw_strings():
    """In a plain string, ``\\tfrac`` starts with a tab, ``\\frac`` with a form feed and ``\\nu`` with a newline: a
    docstring whose source has a backslash before a letter must be a raw string (``r\"\"\"...\"\"\"``)."""
    import ast

    escape = re.compile(r"(?<!\\)\\[A-Za-z]")
    bad = []
    for path in sorted(p for d in ("refvae", "rbm", "wakesleep") for p in (ROOT / d).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                source = ast.get_source_segment(text, body[0].value)
                if escape.search(source) and not source[:1] in "rR":
                    bad.append(f"{path.relative_to(ROOT)}:{body[0].lineno}")
    assert bad == []


def test_the_markup_of_docstrings_and_markdown():
    """Lists (nested after a blank line), numpydoc fields, literal blocks and Markdown fences keep their shape."""
    doc = block_html("Steps:\n\n1. First\n   goes on.\n2. Second:\n\n   - inner $a$;\n   - inner b.\n\n"
                     "Parameters\n----------\nx : array (n, d)\n    The data.\n\nSketch::\n\n    a -> b\n\nEnd.")
    assert "<ol><li>First goes on.</li><li>Second:<ul><li>inner <math" in doc and "inner b.</li></ul></li></ol>" in doc
    assert '<dl class="fields"><dt><code>x</code> : array (n, d)</dt><dd>The data.</dd></dl>' in doc
    assert '<pre class="literal">a -&gt; b</pre>' in doc and doc.endswith("<p>End.</p>")
    md = block_html("# Title\n\n```bash\n# not a heading\n```\n\n| a | b \\| c |\n|---|---|\n| `f.py::g` | 2 |",
                    link_code=lambda name: "p.html#g" if name == "f.py::g" else None, link_href=lambda h: h)
    assert md.startswith("<h2>Title</h2>") and '<pre class="literal"># not a heading</pre>' in md
    assert "<th>b | c</th>" in md and '<a href="p.html#g"><code>f.py::g</code></a>' in md


def test_open_shows_the_index_in_the_browser(tmp_path, monkeypatch, capsys):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    out = tmp_path / "site"
    assert app.main(["pages", "--out", str(out), "--open"]) == 0
    assert opened == [(out / "index.html").resolve().as_uri()]
    assert f"open {out / 'index.html'}" in capsys.readouterr().out
