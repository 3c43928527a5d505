"""The annotated reference in a real browser: headless Chromium, driven by Playwright's Python package.

Every page of a freshly built site is opened and checked: it loads without console errors; every equation is
MathML that the browser lays out with a non-zero size, and no raw LaTeX is left in the text; every internal link
and anchor resolves; every code block's text, as the browser shows it, is the source's lines. A screenshot of the
VAE's page is written (to ``$REFVAE_SCREENSHOT_DIR`` when set: ``docs/results/pages`` for the docs).

Chromium is the system's (Debian's ``chromium`` package, or ``$REFVAE_CHROMIUM``); Playwright's own browser
download is never needed. Where either is missing the tests skip, saying which.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("latex2mathml", reason="refvae pages needs latex2mathml: pip install -e '.[test]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")

from refvae import app  # noqa: E402
from refvae.pages import registered_pages  # noqa: E402
from refvae.pages.site import build_site  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# What Chromium needs in a closed sandbox: no background connections (refused here), no GPU, no sandbox as root.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium():
    for name in (os.environ.get("REFVAE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = name and shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser_site(tmp_path_factory):
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine: apt-get install chromium (Debian), or set REFVAE_CHROMIUM")
    app.install("program")
    out = tmp_path_factory.mktemp("site")
    build_site(out, root=ROOT, pages=registered_pages())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser, out
        finally:
            browser.close()


def _open(browser, path: Path):
    """A page at ``path`` and the errors it reported (console errors and uncaught exceptions)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"failed to load {r.url}"))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors


_MATH_SIZES = "() => Array.from(document.querySelectorAll('math')).map(m => {" \
              " const r = m.getBoundingClientRect(); return [r.width, r.height]; })"
_DOC_TEXT = "() => Array.from(document.querySelectorAll('.doc, .intro, .guide'))" \
            ".map(e => e.innerText).join('\\n')"
_LINKS = "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
_IDS = "() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)"
_BLOCKS = "() => Array.from(document.querySelectorAll('pre.src')).map(p =>" \
          " [p.dataset.file, +p.dataset.first, +p.dataset.last, p.innerText])"


def test_every_page_loads_without_errors_and_renders_its_equations(browser_site):
    browser, out = browser_site
    for path in sorted(out.glob("*.html")):
        page, errors = _open(browser, path)
        sizes = page.evaluate(_MATH_SIZES)
        text = page.evaluate(_DOC_TEXT)
        page.close()
        assert errors == [], f"{path.name}: {errors}"
        if path.name not in ("index.html", "tests.html"):
            assert len(sizes) >= 10, f"{path.name}: {len(sizes)} equations"
        assert all(w > 0 and h > 0 for w, h in sizes), f"{path.name}: an equation of zero size"
        assert not re.search(r"\\(frac|sum|mathcal|mathbb|operatorname|sigma|mu|log|langle|partial)\b", text), \
            path.name
        assert not re.search(r"\$[^$\s][^$]*\$", text), f"{path.name}: an unconverted $...$"


def test_every_internal_link_resolves_in_the_browser(browser_site):
    browser, out = browser_site
    ids, links = {}, []
    for path in sorted(out.glob("*.html")):
        page, _ = _open(browser, path)
        ids[path.name] = set(page.evaluate(_IDS))
        links += [(path.name, href) for href in page.evaluate(_LINKS)]
        page.close()
    internal = [(name, href) for name, href in links if not href.startswith(("http://", "https://"))]
    assert len(internal) > 100
    for name, href in internal:
        target, _, anchor = href.partition("#")
        target = target or name
        assert (out / target).is_file(), f"{name}: {href}"
        if anchor:
            assert anchor in ids.get(target, ()), f"{name}: {href}"
    # one link followed for real: the browser lands on the anchor's element
    page, errors = _open(browser, out / "vae.html")
    page.click("a.check >> nth=0")
    page.wait_for_load_state("load")
    assert page.url.split("/")[-1].startswith("tests.html#") and errors == []
    assert page.evaluate("() => document.getElementById(location.hash.slice(1)) !== null")
    page.close()


def test_code_blocks_in_the_browser_are_the_source(browser_site):
    browser, out = browser_site
    checked = 0
    for path in sorted(out.glob("*.html")):
        page, _ = _open(browser, path)
        for file, first, last, text in page.evaluate(_BLOCKS):
            lines = (ROOT / file).read_text(encoding="utf-8").splitlines()
            assert text.rstrip("\n") == "\n".join(lines[first - 1:last]), f"{path.name}: {file} {first}-{last}"
            checked += 1
        page.close()
    assert checked > 200


def test_a_screenshot_of_the_vae_page(browser_site, tmp_path):
    browser, out = browser_site
    target = Path(os.environ.get("REFVAE_SCREENSHOT_DIR") or tmp_path) / "vae_page.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page, errors = _open(browser, out / "vae.html")
    # the backward pass: its comments and equations beside the lines that compute them
    page.evaluate("() => document.querySelector('#refvae-vae-elbo-py--negative_elbo_and_grads')"
                  ".closest('section').querySelector('h4.rule').scrollIntoView()")
    page.evaluate("() => window.scrollBy(0, -80)")
    page.screenshot(path=str(target))
    page.close()
    assert errors == []
    assert target.stat().st_size > 20_000 and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
