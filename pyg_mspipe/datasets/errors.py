r"""The one error a bad event file (or data spec) raises."""
from __future__ import annotations

import os

__all__ = ["DataFormatError"]


class DataFormatError(ValueError):
    r"""A data file or data spec that cannot be loaded. :obj:`str(error)` is
    one line, :obj:`"<path>:<line>: <reason>"`, or :obj:`"<path>: <reason>"`
    when no single line is at fault (a missing or empty file, an unknown
    format, a bad spec).

    Args:
        path (str): The file (or the spec) at fault.
        line (int, optional): The 1-based line of the file at fault.
            (default: :obj:`None`)
        reason (str): What is wrong, one line. (default: :obj:`""`)
    """
    def __init__(self, path: str | os.PathLike, line: int | None = None,
                 reason: str = "") -> None:
        self.path = str(path)
        self.line = line
        self.reason = " ".join(str(reason).split())
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {self.reason}")

    def __reduce__(self):
        return type(self), (self.path, self.line, self.reason)
