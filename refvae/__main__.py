"""``python -m refvae``: the same as the ``refvae`` command."""

import sys

from .app import main

sys.exit(main())
