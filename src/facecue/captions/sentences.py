"""Emotion-marked sentences: a deterministic rewrite of a transcript so that a reader sees how it
was said. Pure Python; every label of ``fer5`` and ``fer7`` is covered.

Rules, for ``mark_sentence(text, emotion, intensity, manner=..., emoji=...)``:

- ``neutral`` (and empty text) leaves the words as they are (runs of spaces become one).
- ``unknown`` (:data:`UNKNOWN`: no speaking face was seen, or its expression was too unsure to
  call) leaves the emotion unmarked too; only the voice may mark it: at ``intensity >= STRONG``
  (from the voice's arousal alone) the final punctuation becomes ``!`` (a question: ``?!``).
- Otherwise the sentence's final punctuation (``. , ; : ! ? …``) is replaced by the emotion's
  mark from :data:`STYLES` (happiness ``!``, anger ``!``, surprise ``?!``, fear ``...``,
  sad ``...``, disgust and contempt ``.``). A question keeps its ``?`` and adds only the
  mark's ``!`` (anger: ``?!``; sad: ``?``).
- Strong emotion, ``intensity >= STRONG`` (0.7), is marked by the stronger mark
  (``!!``, ``?!!``, ``...!``) and, when a manner tag is asked for, the stronger adverb
  (``[furiously]`` instead of ``[angrily]``).
- ``manner=True`` puts a manner tag in square brackets before the sentence, like a screenplay
  or an SDH caption, followed by the voice's tags (``tags``: ``shouting``, ``whispering``,
  ``quietly``, ``rapidly``, ``slowly``; :mod:`facecue.speech.voice`), e.g.
  ``[angrily, shouting]``; ``emoji=True`` appends the emotion's emoji.

The word-level form, :func:`mark_words`, keeps one item per word so captions can split a marked
sentence at word times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STRONG = 0.7
_FINAL = ".,;:!?\u2026"


@dataclass(frozen=True)
class Style:
    """How one emotion is written: final mark, manner tag and emoji, plain and strong."""

    mark: str
    strong_mark: str
    manner: str
    strong_manner: str
    emoji: str


STYLES: dict[str, Style] = {
    "anger": Style("!", "!!", "angrily", "furiously", "\U0001F620"),
    "contempt": Style(".", "!", "with contempt", "scornfully", "\U0001F612"),
    "disgust": Style(".", "!", "with disgust", "with revulsion", "\U0001F922"),
    "fear": Style("...", "...!", "fearfully", "in terror", "\U0001F628"),
    "happiness": Style("!", "!!", "happily", "joyfully", "\U0001F604"),
    "sad": Style("...", "...", "sadly", "tearfully", "\U0001F622"),
    "surprise": Style("?!", "?!!", "in surprise", "in astonishment", "\U0001F632"),
}
# Other label sets' names for the same emotions (ferplus8 says "sadness" where FER2013 says
# "sad"): captions, their CSS classes and speech use one name per emotion.
ALIASES = {"sadness": "sad"}
EMOTIONS = (*STYLES, "neutral", *ALIASES)
# No facial emotion to tell: the speaker's face was not seen, or too unsure to call. Not an
# emotion (speech has no prosody for it), so not in EMOTIONS.
UNKNOWN = "unknown"


def canonical(emotion: str) -> str:
    """The captions' name of an emotion label of any label set (``sadness`` -> ``sad``)."""
    return ALIASES.get(emotion, emotion)


def mark_words(words: Sequence[str], emotion: str, intensity: float = 0.5, *,
               manner: bool = False, emoji: bool = False, tags: Sequence[str] = ()) -> list[str]:
    """``words`` with the emotion marks attached to the first and last word (same length)."""
    if emotion not in EMOTIONS and emotion != UNKNOWN:
        raise ValueError(f"unknown emotion {emotion!r}; choose one of {[*EMOTIONS, UNKNOWN]}")
    out = list(words)
    if not out:
        return out
    strong = intensity >= STRONG
    adverbs = list(tags)
    if emotion == UNKNOWN and strong:  # the voice alone: intensity, never an emotion
        last = out[-1].rstrip(_FINAL)
        out[-1] = (last or out[-1]) + ("?!" if out[-1].endswith("?") else "!")
    elif emotion not in ("neutral", UNKNOWN):
        style = STYLES[canonical(emotion)]
        last = out[-1].rstrip(_FINAL)
        mark = style.strong_mark if strong else style.mark
        if out[-1].endswith("?"):
            mark = "?" + mark.replace("?", "").replace(".", "")
        out[-1] = (last or out[-1]) + mark
        if emoji:
            out[-1] += " " + style.emoji
        adverbs.insert(0, style.strong_manner if strong else style.manner)
    if manner and adverbs:
        out[0] = f"[{', '.join(adverbs)}] {out[0]}"
    return out


def mark_sentence(text: str, emotion: str, intensity: float = 0.5, *, manner: bool = False,
                  emoji: bool = False, tags: Sequence[str] = ()) -> str:
    """The emotion-marked sentence (rules in the module docstring)."""
    return " ".join(mark_words(text.split(), emotion, intensity, manner=manner, emoji=emoji,
                               tags=tags))
