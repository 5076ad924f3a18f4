"""``python -m net``: see :mod:`net.cli`."""
import sys

from .cli import main

sys.exit(main())
