"""``python -m gitjsonl.testing serve [--root DIR] [--repo owner/name]``."""

from __future__ import annotations

import sys

from ._serve import main

if __name__ == "__main__":
    sys.exit(main())
