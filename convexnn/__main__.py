"""``python -m convexnn``: the ``convexnn`` command line."""

import sys

from convexnn.cli import main

sys.exit(main())
