"""`python -m harness.load load …`."""

import sys

from harness.load.cli import main

sys.exit(main())
