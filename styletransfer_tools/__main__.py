"""``python -m styletransfer_tools`` is the command line (see cli.py)."""

import sys

from styletransfer_tools.cli import main

sys.exit(main())
