"""``python -m skdgm.benchmark``: see :func:`skdgm.benchmark.main`."""

import sys

from ._cli import main

if __name__ == "__main__":  # worker processes (--jobs) import this module too
    sys.exit(main())
