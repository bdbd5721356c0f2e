"""`python -m innerlab ...` is the `innerlab` command."""

import sys

from innerlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
