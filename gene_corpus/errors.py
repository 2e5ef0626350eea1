"""The one exception type users see as a one-line ``error: …`` message."""


class InputError(ValueError):
    """Bad input from the user: a file, gene, field, model or parameter.

    The message is one line that names what was wrong (file and line, gene, column …) and what to do. A parameter
    is named as the library spells it (``control='control'``); the command line prints the message as
    ``error: <message>`` with each parameter translated to its flag (``--control control``) and exits 1, with no
    traceback.
    """
