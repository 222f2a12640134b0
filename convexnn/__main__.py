"""``python -m convexnn``: the ``convexnn`` command line."""

import sys

from convexnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
