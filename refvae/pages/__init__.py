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
        if page in registered_pages():
            continue
        if page.slug in {p.slug for p in registered_pages()} | {"index", "tests"}:
            raise ValueError(f"two pages have the slug {page.slug!r} (or it is index or tests, which the site "
                             "writes itself): give the page a slug of its own")
        _PAGES.append(page)


def registered_pages() -> tuple:
    """The core's pages, then every registered model's, in registration order."""
    return tuple(CORE_PAGES) + tuple(_PAGES)


_OPTIM_TESTS = ("tests/test_fast.py::test_adam_textbook_form_is_algorithm_1",
                "tests/test_fast.py::test_adam_fast_equals_the_papers_algorithm")

_N, _TN = "refvae/numerics.py", "tests/test_numerics.py::"
_NUMERICS_TESTS = (_TN + "test_elementwise_values_and_derivatives", _TN + "test_extreme_logits_stay_finite")
_GAUSSIAN_TESTS = (_TN + "test_gaussian_log_prob_matches_scipy_and_derivatives",)
_LEARNED_PRIOR_TESTS = ("tests/test_aggregate.py::test_learned_prior_gradients",)

#: The core's pages: the stable numerics and the layer every model is built of, and the optimiser they all run.
CORE_PAGES = (
    Page("numerics", "The core: stable numerics, log-probabilities and KL terms, and the affine layer", _N, (
        Section(f"{_N}::softplus", tests=_NUMERICS_TESTS),
        Section(f"{_N}::sigmoid", tests=_NUMERICS_TESTS),
        Section(f"{_N}::logsumexp", tests=(_TN + "test_logsumexp_matches_scipy_and_handles_minus_inf",
                                           _TN + "test_logsumexp_derivative")),
        Section(f"{_N}::bernoulli_log_prob", tests=(_TN + "test_bernoulli_log_prob_equals_textbook_form",)),
        Section(f"{_N}::bernoulli_log_prob_grad", tests=(_TN + "test_bernoulli_log_prob_derivative",)),
        Section(f"{_N}::bernoulli_nll_with_grad",
                tests=("tests/test_fast.py::test_bernoulli_nll_with_grad_equals_the_separate_functions",)),
        Section(f"{_N}::gaussian_log_prob", tests=_GAUSSIAN_TESTS),
        Section(f"{_N}::gaussian_log_prob_grad", tests=_GAUSSIAN_TESTS),
        Section(f"{_N}::kl_standard_normal", tests=(_TN + "test_kl_standard_normal_matches_quadrature",)),
        Section(f"{_N}::kl_standard_normal_grad", tests=(_TN + "test_kl_standard_normal_derivative",)),
        Section(f"{_N}::kl_normal", tests=_LEARNED_PRIOR_TESTS),
        Section(f"{_N}::kl_normal_grad", tests=_LEARNED_PRIOR_TESTS),
        Section("refvae/layers.py::affine", tests=("tests/test_layers.py::test_linear_matches_its_equation",)),
        Section("refvae/layers.py::affine_backward", tests=("tests/test_layers.py::test_linear",)),
    )),
    Page("adam", "Adam: the optimiser, as the paper writes it beside its fast form", "refvae/optim.py", (
        Section("refvae/optim.py::Optimizer.step", tests=("tests/test_train.py::test_sgd_momentum_and_sign",)),
        Section("refvae/optim.py::SGD._update", tests=("tests/test_train.py::test_sgd_momentum_and_sign",)),
        Section("refvae/optim.py::Adam._update", tests=_OPTIM_TESTS),
    )),
)
