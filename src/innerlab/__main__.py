import sys

from innerlab.cli import main

sys.exit(main())
