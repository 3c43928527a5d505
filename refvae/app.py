"""The ``refvae`` program: the one module that lists the models, imports them (each registers its commands,
evaluator, gradient checks and training-curve series with the core) and runs the command line.

    refvae train vae ...          # console script (setup.py)
    python -m refvae train vae ...

A new model package adds itself here, and nowhere else in the core.
"""

from __future__ import annotations

import importlib
import sys

from .cli import main as cli_main

__all__ = ["MODEL_PLUGINS", "load_plugins", "main"]

#: Modules that register a model's commands (and, through their packages, its checks and series).
MODEL_PLUGINS = ("refvae.vae.cli", "rbm.cli", "wakesleep.cli")


def load_plugins() -> None:
    """Import every model plugin (the sibling packages rbm and wakesleep may be absent from a partial install)."""
    for name in MODEL_PLUGINS:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name not in (name, name.split(".")[0]):
                raise


def main(argv=None) -> int:
    """Run ``refvae`` with every model's commands."""
    load_plugins()
    return cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
