"""The one error a condition's author sees: what is wrong, and where."""

from __future__ import annotations


class ConditionError(ValueError):
    """A condition that cannot be parsed.

    ``position`` is a 0-based character offset so an editor can underline the spot; the text
    counts columns from 1, as people do. The message never repeats the position, so the API
    and the dashboard can place it themselves.
    """

    message: str
    position: int

    def __init__(self, message: str, position: int) -> None:
        # Both go to ValueError so the exception pickles and compares like its arguments.
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (at column {self.position + 1})"
