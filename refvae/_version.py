"""The version of refvae (one place: the package, the command line and setup.py read it)."""

__version__ = "0.1.0"
