"""The ``refvae`` program, and the one table of the models it knows.

    refvae train vae ...          # console script (setup.py)
    python -m refvae train vae ...

:data:`MODELS` lists every model: its class (so that a checkpoint of its kind can be rebuilt), its commands
(``refvae train <name>``, its ``evaluate`` and ``sample`` for its checkpoints, commands of its own, the
command-line wording of its errors), its gradient checks (``refvae gradcheck``), the panels of its training
curves and its pages of the annotated reference (``refvae pages``). Nothing registers itself when it is imported:
:func:`install` reads this table and hands each entry to the core's registries, once, when the program starts
(and ``refvae.load`` installs the classes). A new model adds one entry here, and nowhere else in the core.

Entries name objects as ``"module:attribute"`` strings, imported only by :func:`install`: ``import refvae`` and
every core module stay free of models and of matplotlib.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

__all__ = ["CORE_CHECKS", "MODELS", "ModelEntry", "install", "main", "resolve"]


@dataclass(frozen=True)
class ModelEntry:
    """One model of the program; every field but ``kind`` is a ``"module:attribute"`` string (or a tuple of them)."""

    kind: str                       # the class name, as checkpoints record it
    model_class: str                # the class, rebuilt from checkpoints of this kind
    train_command: str              # add_parser(train_subparsers): adds ``refvae train <name>``
    evaluate: str                   # fn(model, args) -> exit status, for ``refvae evaluate``
    sample: str                     # fn(model, n, args) -> (n, d) array, for ``refvae sample``
    checks: str                     # {name: fn(seed) -> GradcheckResult}, for ``refvae gradcheck``
    curves: str                     # {panel: {"title", "ylabel", "series", "right_axis"}}, for the training curves
    sample_sources: str = ""        # the ``--source`` values ``sample`` handles (default: "prior" only)
    commands: tuple = ()            # add_parser(subparsers): commands of its own (the VAE's ``diagnose``)
    command_line_terms: str = ""    # ((pattern, replacement), ...): library wording -> command-line wording
    pages: str = ""                 # (refvae.pages.Page, ...): its mathematics beside its code, for ``refvae pages``


MODELS = (
    ModelEntry(kind="GaussianVAE", model_class="refvae.vae.model:GaussianVAE",
               train_command="refvae.vae.cli:add_train_parser", evaluate="refvae.vae.cli:evaluate_checkpoint",
               sample="refvae.vae.cli:sample_checkpoint", sample_sources="refvae.vae.model:SAMPLE_SOURCES",
               commands=("refvae.vae.cli:add_diagnose_parser",),
               checks="refvae.vae.checks:CHECKS", curves="refvae.vae.plots:CURVES", pages="refvae.vae.pages:PAGES"),
    ModelEntry(kind="BernoulliRBM", model_class="rbm.model:BernoulliRBM",
               train_command="rbm.cli:add_train_parser", evaluate="rbm.cli:evaluate_checkpoint",
               sample="rbm.cli:sample_checkpoint", command_line_terms="rbm.cli:COMMAND_LINE_TERMS",
               checks="rbm.checks:CHECKS", curves="rbm.plots:CURVES", pages="rbm.pages:PAGES"),
    ModelEntry(kind="HelmholtzMachine", model_class="wakesleep.model:HelmholtzMachine",
               train_command="wakesleep.cli:add_train_parser", evaluate="wakesleep.cli:evaluate_checkpoint",
               sample="wakesleep.cli:sample_checkpoint", command_line_terms="wakesleep.cli:COMMAND_LINE_TERMS",
               checks="wakesleep.checks:CHECKS", curves="wakesleep.plots:CURVES", pages="wakesleep.pages:PAGES"),
)

#: Gradient checks of the core's own trained model (the feature classifier of the sample-quality measures).
CORE_CHECKS = "refvae.features:CHECKS"

#: What :func:`install` can install: the classes alone (for ``refvae.load``) or everything (the program).
PARTS = ("classes", "program")


def resolve(name: str):
    """The object a ``"module:attribute"`` string names (the module imported on first use)."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _available(entry: ModelEntry) -> bool:
    """False when the entry's package is not installed (the sibling packages rbm and wakesleep may be absent)."""
    module = entry.model_class.partition(":")[0]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name in (module, module.split(".")[0]):
            return False
        raise
    return True


def install(part: str = "program") -> None:
    """Hand the table to the core's registries: ``"classes"`` (checkpoints of every kind can be rebuilt) or
    ``"program"`` (also the commands, gradient checks and training-curve panels). Installing twice is harmless."""
    from .checkpoint import register_model

    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    entries = [entry for entry in MODELS if _available(entry)]
    for entry in entries:
        register_model(resolve(entry.model_class))
    if part == "program":
        _install_program(entries)


def _install_program(entries) -> None:
    from . import cli
    from .gradcheck import register_checks          # (``refvae.gradcheck`` is also the function of that name)
    from .pages import register_pages
    from .plots.curves import register_panels

    register_checks(resolve(CORE_CHECKS))
    for entry in entries:
        cli.register_train_command(resolve(entry.train_command))
        for command in entry.commands:
            cli.register_command(resolve(command))
        sources = resolve(entry.sample_sources) if entry.sample_sources else ("prior",)
        cli.register_evaluator(entry.kind, resolve(entry.evaluate))
        cli.register_sampler(entry.kind, resolve(entry.sample), sources=sources)
        if entry.command_line_terms:
            cli.register_command_line_terms(*resolve(entry.command_line_terms))
        register_checks(resolve(entry.checks))
        register_panels(resolve(entry.curves))
        if entry.pages:
            register_pages(resolve(entry.pages))


def main(argv=None) -> int:
    """Run ``refvae`` with every model's commands."""
    from .cli import main as cli_main

    install("program")
    return cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
