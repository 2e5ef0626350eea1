"""The exception types users see as a one-line ``error: …`` message."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a file, gene, field, model or parameter.

    The message is one line that names what was wrong (file and line, gene, column …) and what to do. A parameter
    is named as the library spells it (``control='control'``); the command line prints the message as
    ``error: <message>`` with each parameter translated to its flag (``--control control``) and exits 1, with no
    traceback.
    """


class InputTypeError(InputError, TypeError):
    """An argument of the wrong type (a NumPy array or ``None`` where an AnnData belongs, a number for a list …).

    Both a :class:`TypeError` (what Python raises for a wrong type) and an :class:`InputError` (one line on the
    command line), with a message that names the argument, what it got and what it takes.
    """


class OptionError(InputError):
    """Bad input that one option fixes: a file read with options that do not fit it (``condition_key``, ``control``
    …). The message ends with ``pass PARAMETER=VALUE``; :meth:`when_fixed` says the same for data read with options
    that cannot be passed again (a model reads new data with the options it was trained with).

    Parameters
    ----------
    problem
        What is wrong, one line.
    parameter, value
        The option that fixes it and an example value (``condition_key``, ``COLUMN``).
    sep
        What joins the problem and the fix.
    """

    def __init__(self, problem: str, parameter: str, value: str, *, sep: str = "; ") -> None:
        super().__init__(f"{problem}{sep}pass {parameter}={value}")
        self.problem, self.parameter, self.value = problem, parameter, value

    def when_fixed(self, current: object) -> InputError:
        """The same problem for options fixed at ``current`` (the value in use): the file must fit them."""
        return InputError(
            f"{self.problem}; the model reads data with the options it was trained with "
            f"({self.parameter}={current!r}): use a file of that layout, or retrain with {self.parameter}={self.value}"
        )


def first_line(error: BaseException | str, limit: int = 160) -> str:
    """The first non-blank line of an exception's message (its type's name when it has none), cut at ``limit``
    characters: the part of a library's error that fits into one ``error: …`` line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
