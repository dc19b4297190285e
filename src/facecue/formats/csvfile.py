"""The data sets' CSV files, plain or gzip, read so that every fault names the file, and its
line where there is one: a truncated or corrupt .gz, bytes that are not UTF-8, a bad CSV record.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"


class DataFileError(ValueError):
    """A data file that cannot be read; the message names the file."""


class BadRowError(DataFileError):
    """A row that cannot be used; the message names the file line and the problem."""


def csv_rows(path: Path, kind: str, on_bad: Callable[[int, str], None] | None = None
             ) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of each record of a CSV file (gzip when it starts like one); line 1 is
    the header and blank lines are passed over.

    A record with bytes that are not UTF-8 raises :class:`BadRowError`, or, with ``on_bad``,
    is handed to ``on_bad(line, message)`` and left out.
    """
    if not path.exists():
        raise FileNotFoundError(f"{kind} file not found: {path}")
    if path.is_dir():
        raise DataFileError(f"{path} is a folder, expected a {kind} CSV file")
    with open(path, "rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    undecodable: dict[int, str] = {}
    raw = (gzip.open if gz else open)(path, "rb")
    reader = csv.reader(_decoded(raw, undecodable))
    header = True  # a header that cannot be read is never left out
    try:
        with raw:
            for row in reader:
                if undecodable:
                    line, problem = min(undecodable.items())
                    undecodable.clear()
                    message = f"{path}: line {line}: {problem}"
                    if on_bad is None or header:
                        raise BadRowError(message)
                    on_bad(line, message)
                elif row:
                    header = False
                    yield reader.line_num, row
    except EOFError:
        raise DataFileError(f"{path}: truncated: the compressed data stops after line "
                            f"{reader.line_num}; copy or download the file again") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataFileError(f"{path}: corrupt gzip data after line {reader.line_num} ({e})"
                            ) from None
    except csv.Error as e:
        raise BadRowError(f"{path}: line {reader.line_num}: {e}") from None


def header_columns(path: Path, rows: Iterator[tuple[int, list[str]]], want: list[str],
                   expected: str = "") -> tuple[list[str], list[int]]:
    """The header row of ``rows`` (lower-cased, stripped) and the index of each ``want``
    column in it; a missing header or column raises :class:`BadRowError` naming its line
    (``expected``, if given, says what the header should be)."""
    try:
        line, header = next(rows)
    except StopIteration:
        raise BadRowError(f"{path}: empty file, expected a header row") from None
    header = [h.strip().lower() for h in header]
    missing = [c for c in want if c not in header]
    if missing:
        raise BadRowError(f"{path}: line {line}: header lacks column(s) {missing}"
                          + (f"; expected {expected}" if expected else ""))
    return header, [header.index(c) for c in want]


def _decoded(raw: Iterable[bytes], undecodable: dict[int, str]) -> Iterator[str]:
    """Each line as text (a leading byte-order mark dropped); a line that is not UTF-8 is
    noted in ``undecodable`` and passed on with replacement characters."""
    for n, data in enumerate(raw, 1):
        try:
            yield data.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as e:
            undecodable[n] = (f"byte 0x{data[e.start]:02x} at column {e.start + 1} is not UTF-8 "
                              "text (save the file as UTF-8)")
            yield data.decode("utf-8", "replace")
