"""The annotated reference: each model's mathematics as a page of commentary and equations beside the code that runs.

    refvae pages --out site          # or: python -m refvae pages --out site; then open site/index.html

Pages are built from the source itself, in the manner of Docco, Pycco and the side-by-side annotated paper
implementations: for each function a page names, its docstring and the comments above each run of its code go in
the left column, the code (exactly the file's lines, numbered) in the right one, row by row. Nothing is copied: a
page is held to its source by ``tests/test_pages.py`` (every function a page names exists, every code block is the
file's lines), and the built site is opened in a real browser by ``tests/test_pages_browser.py``.

The commentary's markup is light (:mod:`refvae.pages.text`): ``$...$`` and ``$$...$$`` are LaTeX, rendered to
MathML when the site is built, and ``.. math::`` blocks in docstrings as in Sphinx. The core knows no model: each
model lists its pages (:class:`Page`) in a module of its own, named by its entry in :data:`refvae.app.MODELS`, and
:func:`register_pages` receives them when the program starts; the core's own pages (Adam, the layers) are
:data:`CORE_PAGES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CORE_PAGES", "Figure", "Page", "Section", "register_pages", "registered_pages"]


@dataclass(frozen=True)
class Figure:
    """A figure of the docs (``path`` relative to the repository) and what it shows."""

    path: str
    caption: str


@dataclass(frozen=True)
class Section:
    """One function (or class) on a page: ``source`` is ``"path/to/file.py::qualname"``; ``tests`` name the tests
    that prove its equations (``"tests/test_x.py::test_name"``, or ``::Class::test_name``); ``figures`` show them."""

    source: str
    tests: tuple = ()
    figures: tuple = ()


@dataclass(frozen=True)
class Page:
    """One page: ``slug`` (its file is ``<slug>.html``), its title, the file whose module docstring introduces it
    (``intro``, a path relative to the repository) and its sections in the paper's order."""

    slug: str
    title: str
    intro: str
    sections: tuple = field(default_factory=tuple)


_PAGES: list = []


def register_pages(pages) -> None:
    """Add a model's pages to the site (the program calls this for each entry of :data:`refvae.app.MODELS`)."""
    for page in pages:
        if page.slug in (p.slug for p in _PAGES):
            if page in _PAGES:
                continue
            raise ValueError(f"two pages have the slug {page.slug!r}: give each page a name of its own")
        _PAGES.append(page)


def registered_pages() -> tuple:
    """The core's pages, then every registered model's, in registration order."""
    return tuple(CORE_PAGES) + tuple(_PAGES)


_OPTIM_TESTS = ("tests/test_fast.py::test_adam_textbook_form_is_algorithm_1",
                "tests/test_fast.py::test_adam_fast_equals_the_papers_algorithm")

#: The core's pages: the optimiser every model's training runs.
CORE_PAGES = (
    Page("adam", "Adam: the optimiser, as the paper writes it beside its fast form", "refvae/optim.py", (
        Section("refvae/optim.py::Optimizer.step"),
        Section("refvae/optim.py::SGD._update", tests=("tests/test_train.py::test_sgd_momentum_and_sign",)),
        Section("refvae/optim.py::Adam._update", tests=_OPTIM_TESTS),
    )),
)
