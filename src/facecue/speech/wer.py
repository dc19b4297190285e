"""Word error rate with a written-down text normalisation, so recognition figures can be compared.

Normalisation (:func:`normalise`), applied to reference and hypothesis alike:

1. lower-case;
2. spell out numbers as words, also when glued to letters (``"J3"`` -> ``"j three"``,
   ``"1,450"`` -> ``"one thousand four hundred fifty"``), reading 1100-1999 as years
   (``"1455"`` -> ``"fourteen fifty five"``) and ordinals as words (``"15th"`` -> ``"fifteenth"``);
3. hyphens, slashes and dashes become spaces; every other character that is not a letter, digit,
   apostrophe or space is removed (so punctuation never counts as an error);
4. whitespace is collapsed.

WER = (substitutions + deletions + insertions) / reference words, by word-level Levenshtein.
"""

from __future__ import annotations

import re

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """English words for a non-negative integer (below a billion), e.g. 42 -> forty two."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_words(head)} {name}" + ("" if rest == 0 else f" {number_words(rest)}")
    raise AssertionError("unreachable")


_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth",
            "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def _spell(m: re.Match) -> str:
    digits = m[1].replace(",", "")
    n = int(digits)
    if "," not in m[1] and len(digits) == 4 and 1100 <= n <= 1999 and n % 100:
        words = f"{number_words(n // 100)} {number_words(n % 100)}"  # a year: fourteen fifty
    else:
        words = number_words(n)
    if m[2]:
        head, _, last = words.rpartition(" ")
        last = _ORDINAL.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
        words = f"{head} {last}"
    return f" {words} "


def normalise(text: str) -> list[str]:
    """The words of ``text`` after the normalisation described in the module docstring."""
    text = text.lower()
    text = re.sub(r"(\d+(?:,\d{3})*)(st|nd|rd|th)?\b", _spell, text)
    text = re.sub(r"[-/\u2013\u2014]", " ", text)
    text = re.sub(r"[^a-z0-9' ]", "", text)
    return text.split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words) after normalisation; sum both over a corpus for its WER."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of one hypothesis (see the module docstring for the normalisation)."""
    edits, n = word_errors(reference, hypothesis)
    return edits / max(n, 1)
