"""The one exception type users see as a one-line ``error: …`` message."""


class InputError(Exception):
    """Bad input from the user: a file, gene, field, model or option.

    The message is one line that names what was wrong (file and line, gene, column …) and what to do.
    The command line prints it as ``error: <message>`` and exits 1; no traceback is shown.
    """
