"""Errors a user can act on."""


class HRNetError(Exception):
    """A user-facing error: bad input, bad argument or a missing file.

    The message names the file, the record and the reason. The CLI prints it and exits 2.
    """
