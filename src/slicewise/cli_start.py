"""What the CLI needs before anything else is imported (kept tiny: it runs first)."""

from __future__ import annotations

import os
import sys

MESSAGE = "interrupted: the operation stopped; a write it had not completed was rolled back"


def interrupted_at_start(signum: int, frame: object) -> None:
    """Ctrl-C while the CLI is still starting (nothing written yet): one line, exit 130, no traceback."""
    sys.stderr.write(MESSAGE + "\n")
    os._exit(130)
