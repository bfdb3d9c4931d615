"""`python -m tui`: the same as the `ocindex` console script (tui/cli.py).
Never holds logic of its own."""

from __future__ import annotations

import sys

from tui.cli import main

sys.exit(main())
