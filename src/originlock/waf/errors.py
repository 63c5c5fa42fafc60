"""Parse errors that carry a message and a position, printed the way wirefilter prints them.

wirefilter reports ``Filter parsing error (<line>:<col>):``, the offending line, carets under the
span, then the message (spec §1.8). The API layer puts ``str(error)`` after "could not parse filter
expression: "; the CLI prints it as is.
"""

from __future__ import annotations

__all__ = ["ParseError"]


class ParseError(ValueError):
    """An expression the Rules language rejects.

    Attributes:
        message: what is wrong, e.g. ``unknown identifier``.
        expression: the whole input.
        start: 0-based character offset where the bad input starts.
        end: offset just past it (``end >= start``).
    """

    def __init__(self, message: str, expression: str, start: int, end: int) -> None:
        self.message = message
        self.expression = expression
        self.start = max(0, min(start, len(expression)))
        self.end = max(self.start, min(end, len(expression)))
        super().__init__(self.format())

    @property
    def line(self) -> int:
        """1-based line of the error start."""
        return self.expression.count("\n", 0, self.start) + 1

    @property
    def column(self) -> int:
        """1-based column of the error start within its line."""
        return self.start - (self.expression.rfind("\n", 0, self.start) + 1) + 1

    def format(self) -> str:
        line_start = self.expression.rfind("\n", 0, self.start) + 1
        line_end = self.expression.find("\n", self.start)
        if line_end == -1:
            line_end = len(self.expression)
        text = self.expression[line_start:line_end]
        col = self.start - line_start
        width = max(1, min(self.end, line_end) - self.start)
        return f"Filter parsing error ({self.line}:{col + 1}):\n{text}\n{' ' * col}{'^' * width} {self.message}"

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, str, int, int]]:
        return (ParseError, (self.message, self.expression, self.start, self.end))
