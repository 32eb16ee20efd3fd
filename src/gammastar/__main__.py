"""``python -m gammastar``."""

import sys

from gammastar.cli import main

sys.exit(main())
