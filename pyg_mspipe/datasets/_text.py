r"""Reading a numeric text table fast (:func:`numpy.loadtxt`), and finding the
line at fault only when something is wrong."""
from __future__ import annotations

import gzip
import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, TextIO

import numpy as np

from pyg_mspipe.datasets.errors import DataFormatError

GZIP_MAGIC = b"\x1f\x8b"


class TextLayout(NamedTuple):
    r"""How a table is written.

    Args:
        delimiter (str, optional): Field separator; :obj:`None` splits on
            runs of whitespace.
        comments (str, optional): Start of a comment (to the end of the
            line); :obj:`None` for none.
        header (bool): Whether the first line is a header.
        widths (tuple): Fewest and most fields of a row (:obj:`None`: no
            most). (default: :obj:`(1, None)`)
        columns (str): The columns, as an error message names them.
            (default: :obj:`"the columns"`)
    """
    delimiter: str | None
    comments: str | None
    header: bool
    widths: tuple[int, int | None] = (1, None)
    columns: str = "the columns"

    def fits(self, width: int) -> bool:
        r"""Whether a row of :obj:`width` fields has an allowed width."""
        return width >= self.widths[0] and (self.widths[1] is None or width <= self.widths[1])

    def misfit(self, path, line: int, width: int) -> DataFormatError:
        r"""The error for a row of a width :meth:`fits` refuses."""
        return DataFormatError(path, line, f"expected {self.columns}, got {width} field"
                               + ("" if width == 1 else "s"))


class Table(NamedTuple):
    r"""A parsed table: the header line (stripped; :obj:`None` without one)
    and the values, :obj:`[rows, columns]` float64."""
    header: str | None
    values: np.ndarray


def open_text(path: str | os.PathLike) -> TextIO:
    r"""Opens :obj:`path` as UTF-8 text, decompressing it when it starts
    with the gzip magic bytes (whatever its name)."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, None, "no such file")
    if not path.is_file():
        raise DataFormatError(path, None, "not a file")
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
        if magic == GZIP_MAGIC:
            return gzip.open(path, "rt", encoding="utf-8")
        return open(path, encoding="utf-8")
    except OSError as error:
        raise DataFormatError(path, None, f"cannot open it ({error.strerror or error})") from None


#: What reading a damaged gzip stream or a binary file raises.
_UNREADABLE = (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error)


def _unreadable(path, error: Exception) -> DataFormatError:
    if isinstance(error, UnicodeDecodeError):
        return DataFormatError(path, None, "not a UTF-8 text file")
    return DataFormatError(path, None, f"damaged gzip file ({error})")


def first_line(path: str | os.PathLike) -> str | None:
    r"""The first non-blank line of :obj:`path`, stripped (:obj:`None` if
    there is none)."""
    try:
        with open_text(path) as f:
            return next((line.strip() for line in f if line.strip()), None)
    except _UNREADABLE as error:
        raise _unreadable(path, error) from None


def _parse(path, layout: TextLayout, max_rows: int | None = None) -> Table:
    try:
        with open_text(path) as f:
            header = None
            if layout.header:
                header = f.readline()
                if not header:
                    raise DataFormatError(path, None, "empty file")
                header = header.strip()
            with warnings.catch_warnings():  # no data; blank lines not counted as rows
                warnings.simplefilter("ignore", UserWarning)
                values = np.loadtxt(f, delimiter=layout.delimiter, comments=layout.comments,
                                    dtype=np.float64, ndmin=2, max_rows=max_rows)
    except _UNREADABLE as error:
        raise _unreadable(path, error) from None
    return Table(header, values)


def read_table(path: str | os.PathLike, layout: TextLayout,
               check: Callable[[Table], None] | None = None) -> Table:
    r"""Parses the numeric table in :obj:`path` (no rows: :obj:`[0, 1]`
    values). Raises :class:`DataFormatError` for a file without even a
    header line, and naming the first row of a width the layout refuses or
    unlike the first row's, or the first non-numeric field.

    Args:
        path (str): The file.
        layout (TextLayout): How it is written.
        check (callable, optional): Checks of the values, raising
            :class:`DataFormatError`; called on the whole table, or, when a
            row cannot be parsed, on the rows before it first (so a fault
            there is the one named). (default: :obj:`None`)
    """
    try:
        table = _parse(path, layout)
    except DataFormatError:
        raise
    except ValueError as error:
        fault = _first_bad_line(path, layout)
        if fault is None:
            raise DataFormatError(path, None, str(error)) from None
        if check is not None:
            check(_parse(path, layout, max_rows=fault[1]))
        raise fault[0] from None
    if table.values.shape[0] and not layout.fits(table.values.shape[1]):
        if check is not None:  # only the header comes before the first row
            check(Table(table.header, table.values[:0]))
        raise layout.misfit(path, locate_row(path, layout, 0)[0], table.values.shape[1])
    if check is not None:
        check(table)
    return table


def _data_lines(path, layout: TextLayout) -> Iterator[tuple[int, list[str]]]:
    r"""The file's data rows as :obj:`numpy.loadtxt` sees them: (1-based
    line number, fields)."""
    with open_text(path) as f:
        for number, line in enumerate(f, 1):
            if layout.header and number == 1:
                continue
            text = line.rstrip("\r\n")
            if layout.comments is not None:
                text = text.split(layout.comments, 1)[0]
            if layout.delimiter is None:
                fields = text.split()
            else:
                fields = text.split(layout.delimiter) if text else []
            if fields:
                yield number, fields


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return "_" not in field  # Python's float() takes '1_0'; numpy does not


def _first_bad_line(path, layout: TextLayout) -> tuple[DataFormatError, int] | None:
    r"""The error for the first row that cannot be parsed, and the number of
    data rows before it."""
    first = None
    for row, (number, fields) in enumerate(_data_lines(path, layout)):
        if not layout.fits(len(fields)):
            return layout.misfit(path, number, len(fields)), row
        if first is None:
            first = number, len(fields)
        elif len(fields) != first[1]:
            return DataFormatError(path, number, f"expected {first[1]} fields (as on line "
                                   f"{first[0]}), got {len(fields)}"), row
        for k, field in enumerate(fields, 1):
            if not _is_number(field):
                return DataFormatError(path, number,
                                       f"field {k} ({field.strip()!r}) is not a number"), row
    return None


def locate_row(path: str | os.PathLike, layout: TextLayout, row: int) -> tuple[int, list[str]]:
    r"""The 1-based line number and the fields (stripped) of data row
    :obj:`row` (0-based) of a file that :func:`read_table` parsed."""
    for k, (number, fields) in enumerate(_data_lines(path, layout)):
        if k == row:
            return number, [field.strip() for field in fields]
    raise IndexError(f"'{path}' has no data row {row}")
