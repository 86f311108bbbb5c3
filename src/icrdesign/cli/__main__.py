"""``python -m icrdesign.cli COMMAND ...``: what the workflow's rules run."""

import sys

from icrdesign.cli import main

sys.exit(main())
