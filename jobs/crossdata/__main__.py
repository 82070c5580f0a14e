"""``python -m crossdata``: the same as the ``crossdata`` console script."""

import sys

from crossdata.cli import main

if __name__ == "__main__":
    sys.exit(main())
