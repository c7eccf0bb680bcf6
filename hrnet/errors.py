"""Errors a user can act on, and how the command line shows them and warnings."""

import os
import sys


class HRNetError(Exception):
    """A user-facing error: bad input, bad argument or a missing file.

    The message names the file, the record and the reason. The CLI prints it and exits 2.
    """


def coloured(text: str, colour: int) -> str:
    """``text`` in ANSI colour ``colour`` (31 red, 33 yellow) when standard error is a terminal
    (not a log file or a pipe) and NO_COLOR is not set."""
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[{colour}m{text}\033[0m"
    return text
