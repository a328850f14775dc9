"""The one base class for mistakes of the user's: bad input, a bad file, a question the data cannot answer.

Every error that a user can cause and fix derives from :class:`UserError`, whatever module raises
it. The CLI prints its message as one line and exits with status 2; the dashboard shows it as a
message next to the input it names. Anything that is not a ``UserError`` is a bug: the CLI logs its
traceback and the dashboard says something went wrong.

A message names the input and what to change ("--borrow alpha=nan: the value must be a finite
number, e.g. alpha=0.34"), and quotes numbers as the user typed them.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A mistake of the user's that they can fix; the message says which input and what to change."""
