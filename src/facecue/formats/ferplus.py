"""FER+ votes (Microsoft's ``fer2013new.csv``, plain or .gz) joined to the FER2013 pixels by row.

FER+ holds no pixels: row i of its file is ten crowd-sourced votes for row i of ``fer2013.csv``
(columns :data:`facecue.labels.FERPLUS_COLUMNS`). The join is only as good as that alignment,
so it is checked: both files hold the same number of rows (35,887 for the full data set) and
the same Usage on every row. The rebuilt FER2013 (``../shared/data/fer2013``) does not know the
exact position of 175 rows within their Usage block; its ``provenance.csv.gz`` names them
(``row_position`` ``arbitrary-within-...``), and the join leaves them out and counts them.

Every row is validated; a bad one raises :class:`BadRowError` naming its file line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecue.formats.csvfile import BadRowError, DataFileError, csv_rows, header_columns
from facecue.formats.fer2013 import USAGES, Fer2013, read_fer2013
from facecue.labels import FERPLUS_COLUMNS

log = logging.getLogger(__name__)

FER2013_ROWS = 35_887  # rows of the full fer2013.csv and fer2013new.csv
TAGGERS = 10  # votes per image
N_EMOTIONS = 8  # the first eight vote columns; then unknown and NF
UNKNOWN, NF = 8, 9  # vote columns
# What :func:`clear_majority` gives a row that has no emotion by the majority rule.
NO_CLEAR_MAJORITY, UNKNOWN_MAJORITY, NF_MAJORITY = -1, -2, -3
LEFT_OUT = {NF_MAJORITY: "nf_majority", UNKNOWN_MAJORITY: "unknown_majority",
            NO_CLEAR_MAJORITY: "no_clear_majority"}
PROVENANCE = "provenance.csv.gz"  # beside the rebuilt fer2013.csv.gz
# :func:`clear_majority` in one line, for reports.
MAJORITY_RULE = ("the FER+ paper's majority vote: columns with a single vote dropped as "
                 "outliers, the top column must hold more than half of the votes left (so a tie "
                 "is never a clear majority); rows without one, or whose majority is unknown or "
                 "NF, are left out")


def check_ferplus_options(labels: str, ferplus: str | Path | None, skip_bad: bool) -> None:
    """Raise ValueError unless the FER+ votes come exactly with label set ``ferplus8`` and
    every FER2013 row is read (the join is by row, so none may be skipped)."""
    if labels == "ferplus8" and ferplus is None:
        raise ValueError("label set ferplus8 comes from the FER+ votes: pass the FER+ file "
                         "(--ferplus fer2013new.csv.gz)")
    if labels != "ferplus8" and ferplus is not None:
        raise ValueError(f"the FER+ votes give label set ferplus8, not {labels}: pass "
                         "--labels ferplus8")
    if ferplus is not None and skip_bad:
        raise ValueError("FER+ is joined to FER2013 row by row, so every row must be read: "
                         "drop --skip-bad-rows")


def clear_majority(votes: np.ndarray) -> np.ndarray:
    """Each row's emotion (0-7) by the FER+ paper's majority rule, else why it has none
    (:data:`NO_CLEAR_MAJORITY`, :data:`UNKNOWN_MAJORITY`, :data:`NF_MAJORITY`).

    As Microsoft's reader does in its majority mode (``src/ferplus.py``, used for the paper's
    validation and test sets): a column with a single vote is an outlier and is dropped (all
    ten columns), then the top column must hold more than half of the votes left. A tie at
    the top is therefore never a clear majority (two columns cannot both hold more than half).
    A clear majority of ``unknown`` or ``NF`` gives no emotion either.
    """
    votes = np.where(np.asarray(votes) <= 1, 0, votes)
    top = votes.argmax(1)
    out = np.where(2 * votes.max(1) > votes.sum(1), top, NO_CLEAR_MAJORITY)
    out[out == UNKNOWN] = UNKNOWN_MAJORITY
    out[out == NF] = NF_MAJORITY
    return out


def vote_distribution(votes: np.ndarray) -> np.ndarray:
    """(N, 8) share of each row's emotion votes per emotion: ``unknown`` and ``NF`` votes
    dropped, the rest renormalised; all zeros for a row without emotion votes."""
    emotion = np.asarray(votes, np.float64)[:, :N_EMOTIONS]
    total = emotion.sum(1, keepdims=True)
    return np.divide(emotion, total, out=np.zeros_like(emotion), where=total > 0)


@dataclass
class FerPlus(Fer2013):
    """FER2013 rows (pixels, FER2013's own label, Usage, FER2013 file line) with their FER+
    votes and their row index in both files."""

    votes: np.ndarray  # (N, 10) int64 vote counts, FERPLUS_COLUMNS order
    rows: np.ndarray  # (N,) row index in both files (0 = the first row after the header)

    def subset(self, mask: np.ndarray) -> FerPlus:
        return FerPlus(self.images[mask], self.labels[mask], self.usage[mask], self.lines[mask],
                       self.votes[mask], self.rows[mask])

    def majority(self) -> np.ndarray:
        """:func:`clear_majority` of each row."""
        return clear_majority(self.votes)

    def left_out(self) -> dict[str, int]:
        """How many rows the majority rule leaves out, by reason."""
        codes = self.majority()
        return {name: int((codes == code).sum()) for code, name in LEFT_OUT.items()}

    def for_majority(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images and clear-majority emotions (0-7) of the rows that have one, and the mask of
        those rows: the rows the paper scores."""
        codes = self.majority()
        keep = codes >= 0
        return self.images[keep], codes[keep], keep

    def for_votes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images and (N, 8) emotion-vote distributions of the rows with at least one emotion
        vote, and the mask of those rows."""
        keep = self.votes[:, :N_EMOTIONS].sum(1) > 0
        return self.images[keep], vote_distribution(self.votes[keep]), keep


@dataclass
class FerPlusReport:
    """What the join checked and left out."""

    rows: int  # rows in each file
    provenance: str | None  # the provenance file used, None: every row taken as aligned
    short_vote_lines: list[int] = field(default_factory=list)  # FER+ lines with < 10 votes
    uncertain: dict[str, int] = field(default_factory=dict)  # per Usage: rows left out

    def summary(self) -> str:
        """One line for the log."""
        uncertain = sum(self.uncertain.values())
        text = f"FER+ joined to FER2013 row by row: {self.rows} rows, same Usage on every row"
        if self.provenance is None:
            text += "; no provenance file: every row taken as aligned"
        else:
            text += (f"; left out {uncertain} rows of uncertain alignment ("
                     + ", ".join(f"{u} {n}" for u, n in self.uncertain.items()) + ")")
        if self.short_vote_lines:
            text += (f"; {len(self.short_vote_lines)} FER+ row(s) with fewer than {TAGGERS} "
                     f"votes (line {', '.join(map(str, self.short_vote_lines))})")
        return text


@dataclass
class FerPlusVotes:
    """The rows of a FER+ vote file."""

    votes: np.ndarray  # (N, 10) int64
    usage: np.ndarray  # (N,) str
    lines: np.ndarray  # (N,) file line of each row (1 = header)


def read_ferplus_votes(path: str | Path) -> FerPlusVotes:
    """Read and validate ``fer2013new.csv[.gz]``: a Usage and ten vote counts per row, each
    0-10, summing to at most ten (the ten taggers) and at least one."""
    path = Path(path)
    rows = csv_rows(path, "FER+")
    header, at = header_columns(path, rows, ["usage", *(c.lower() for c in FERPLUS_COLUMNS)],
                                f"Usage, Image name, {', '.join(FERPLUS_COLUMNS)}")
    votes, usage, lines = [], [], []
    for line, row in rows:
        try:
            use, counts = _parse_votes(row, len(header), at)
        except BadRowError as e:
            raise BadRowError(f"{path}: line {line}: {e}") from None
        usage.append(use)
        votes.append(counts)
        lines.append(line)
    return FerPlusVotes(np.array(votes, np.int64).reshape(-1, len(FERPLUS_COLUMNS)),
                        np.array(usage, dtype=object), np.array(lines, np.int64))


def _parse_votes(row: list[str], ncols: int, at: list[int]) -> tuple[str, list[int]]:
    if len(row) != ncols:
        raise BadRowError(f"expected {ncols} fields, found {len(row)}")
    use = row[at[0]].strip()
    if use not in USAGES:
        raise BadRowError(f"Usage {use!r} is not one of {', '.join(USAGES)}")
    counts = []
    for name, i in zip(FERPLUS_COLUMNS, at[1:], strict=True):
        text = row[i].strip()
        if not (text.isascii() and text.isdigit()) or int(text) > TAGGERS:
            raise BadRowError(f"{name} votes {row[i]!r} is not a count 0-{TAGGERS}")
        counts.append(int(text))
    if not 1 <= sum(counts) <= TAGGERS:
        raise BadRowError(f"the votes sum to {sum(counts)}, expected 1-{TAGGERS} "
                          f"({TAGGERS} taggers)")
    return use, counts


def read_uncertain_rows(path: str | Path, fer: Fer2013) -> np.ndarray:
    """Mask over ``fer``'s rows whose position the rebuilt FER2013's provenance file calls
    uncertain (``row_position`` ``arbitrary-within-...``), after checking that the file
    describes ``fer`` row for row (same row numbers, emotion and Usage)."""
    path = Path(path)
    rows = csv_rows(path, "FER2013 provenance")
    header, (ir, ie, iu, ip) = header_columns(path, rows,
                                              ["row", "emotion", "usage", "row_position"])
    uncertain = []
    for line, row in rows:
        k = len(uncertain)
        if len(row) != len(header):
            raise BadRowError(f"{path}: line {line}: expected {len(header)} fields, found "
                              f"{len(row)}")
        position = row[ip].strip()
        if not position.startswith(("exact", "inferred", "arbitrary")):
            raise BadRowError(f"{path}: line {line}: row_position {position!r} is not exact, "
                              "inferred(...) or arbitrary-within-...")
        if k >= len(fer):
            raise DataFileError(f"{path} has more rows than the {len(fer)} of the FER2013 file")
        if (row[ir].strip(), row[ie].strip(), row[iu].strip()) != (
                str(k), str(fer.labels[k]), fer.usage[k]):
            raise DataFileError(
                f"{path}: line {line} (row {row[ir]}, emotion {row[ie]}, {row[iu]}) does not "
                f"describe FER2013 line {fer.lines[k]} (row {k}, emotion {fer.labels[k]}, "
                f"{fer.usage[k]}): this provenance file is not the FER2013 file's")
        uncertain.append(position.startswith("arbitrary"))
    if len(uncertain) != len(fer):
        raise DataFileError(f"{path} has {len(uncertain)} rows, the FER2013 file {len(fer)}")
    return np.array(uncertain, dtype=bool)


def join_ferplus(fer: Fer2013, votes: FerPlusVotes, uncertain: np.ndarray | None,
                 provenance: str | None = None) -> tuple[FerPlus, FerPlusReport]:
    """``fer`` with the FER+ ``votes`` of the same rows, less the rows ``uncertain`` marks.

    Both must hold the same rows (the full files: 35,887 each) with the same Usage on every
    row; anything else is a :class:`DataFileError` naming the first disagreement.
    """
    if len(votes.votes) != len(fer):
        raise DataFileError(
            f"the FER+ file has {len(votes.votes)} rows and the FER2013 file {len(fer)}: FER+ is "
            f"joined by row, so both must hold the same rows (the full files: {FER2013_ROWS})")
    differ = np.flatnonzero(votes.usage != fer.usage)
    if len(differ):
        k = differ[0]
        raise DataFileError(
            f"Usage differs on {len(differ)} rows, first row {k}: FER+ line {votes.lines[k]} "
            f"{votes.usage[k]}, FER2013 line {fer.lines[k]} {fer.usage[k]}: the files are not "
            "in the same row order")
    if uncertain is None:
        uncertain = np.zeros(len(fer), dtype=bool)
    report = FerPlusReport(
        rows=len(fer), provenance=provenance,
        short_vote_lines=votes.lines[votes.votes.sum(1) < TAGGERS].tolist(),
        uncertain={u: int((uncertain & (fer.usage == u)).sum()) for u in USAGES})
    keep = ~uncertain
    joined = FerPlus(fer.images[keep], fer.labels[keep], fer.usage[keep], fer.lines[keep],
                     votes.votes[keep], np.flatnonzero(keep))
    return joined, report


def load_ferplus(fer: Fer2013, data: str | Path, ferplus: str | Path,
                 provenance: str | Path | None = None) -> tuple[FerPlus, FerPlusReport]:
    """``fer`` (read from ``data``) joined with the votes of ``ferplus``, leaving out the
    rows ``provenance`` (default: ``provenance.csv.gz`` beside ``data``, when there) calls
    uncertain. Without a provenance file every row is taken as aligned, which is right for
    Kaggle's original ``fer2013.csv`` and not for a rebuilt copy; a warning says so."""
    if provenance is None:
        beside = Path(data).parent / PROVENANCE
        if beside.exists():
            provenance = beside
        else:
            log.warning("no %s beside %s: every row is taken as aligned with FER+ (true of "
                        "Kaggle's original fer2013.csv, not of a rebuilt one)", PROVENANCE, data)
    uncertain = None if provenance is None else read_uncertain_rows(provenance, fer)
    return join_ferplus(fer, read_ferplus_votes(ferplus), uncertain,
                        None if provenance is None else str(provenance))


def read_ferplus(data: str | Path, ferplus: str | Path, provenance: str | Path | None = None
                 ) -> tuple[FerPlus, FerPlusReport]:
    """Read the FER2013 file ``data`` (every row: the join is by row) and join it with the
    FER+ votes of ``ferplus`` (:func:`load_ferplus`)."""
    fer, _ = read_fer2013(data)
    return load_ferplus(fer, data, ferplus, provenance)
