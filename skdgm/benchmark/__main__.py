"""``python -m skdgm.benchmark``: see :func:`skdgm.benchmark.main`."""

import sys

from ._cli import main

sys.exit(main())
