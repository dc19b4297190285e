"""Emotion-aware captions: WebVTT (one CSS class per emotion, plus ``strong``), SRT and JSON,
rendered as text (:func:`render_captions`, e.g. for stdout) or written to files
(:func:`write_captions`). Pure Python; files are written atomically.

Cues follow the speech: each utterance's marked words are cut into cues of at most
``MAX_LINES`` lines of at most ``MAX_CHARS`` characters and at most ``MAX_SECONDS`` seconds,
timed by the words they hold; a cue ends at a pause of ``PAUSE`` seconds, and a full cue is
cut after a clause-ending word where there is one. A cue shorter than ``MIN_SECONDS`` is held
longer, but never into the next cue.

In WebVTT each cue's text is wrapped in ``<c.EMOTION>`` (``<c.EMOTION.strong>`` for strong
emotion, then one class per voice tag, e.g. ``<c.unknown.strong.shouting>``); :func:`stylesheet`
gives the matching CSS, embedded in the file as a ``STYLE`` block and written beside it as
``NAME.css`` for players that take an external sheet. ``unknown`` (no facial emotion to tell)
has its own style, pale grey and in italics, and where no face was seen at all an SRT cue is in
italics (``<i>``), the SDH convention for a voice whose speaker is not on screen; the JSON gives
``emotion: "unknown"``, ``no_face`` and the voice's figures.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from facecue.captions.fusion import EmotionalUtterance
from facecue.captions.sentences import STRONG, UNKNOWN, mark_words
from facecue.fileio import atomic_write_text

MAX_CHARS = 42
MAX_LINES = 2
MAX_SECONDS = 7.0
MIN_SECONDS = 1.0
PAUSE = 0.8  # a silence this long between words always starts a new cue
FORMATS = ("vtt", "srt", "json")

# Text colours chosen to stay readable on the usual dark caption background.
COLOURS = {"anger": "#ff6b6b", "contempt": "#d4a5a5", "disgust": "#a3d977", "fear": "#c9a0ff",
           "happiness": "#ffd54f", "sad": "#74b9ff", "surprise": "#ffa94d", "neutral": "#ffffff"}
UNKNOWN_COLOUR = "#cfd8dc"  # not neutral's white: no face said how it was meant


@dataclass(frozen=True)
class Cue:
    """One caption on screen: lines joined by ``\\n``, with the emotion it was said with."""

    start: float
    end: float
    text: str
    emotion: str
    strong: bool
    voice: tuple[str, ...] = ()  # the voice's manner tags (shouting, whispering, ...)
    no_face: bool = False  # the speaker's face was not seen


def make_cues(items: Sequence[EmotionalUtterance], manner: bool = True, emoji: bool = False,
              max_chars: int = MAX_CHARS, max_lines: int = MAX_LINES,
              max_seconds: float = MAX_SECONDS, min_seconds: float = MIN_SECONDS) -> list[Cue]:
    """Readable cues for the utterances, in time order."""
    cues: list[Cue] = []
    for item in sorted(items, key=lambda x: x.utterance.start):
        words = item.utterance.words
        marked = mark_words([w.text for w in words], item.emotion, item.intensity,
                            manner=manner, emoji=emoji, tags=item.tags)
        style = Cue(0.0, 0.0, "", item.emotion,
                    item.emotion != "neutral" and item.intensity >= STRONG, item.tags,
                    item.no_face)
        group: list[int] = []
        for i in range(len(words)):
            trial = [marked[j] for j in group + [i]]
            if group and words[i].start - words[group[-1]].end >= PAUSE:
                cues.append(_cue(words, marked, group, style, max_chars))
                group = []
            elif group and (len(wrap(trial, max_chars)) > max_lines
                            or words[i].end - words[group[0]].start > max_seconds):
                cut = _break(marked, group)
                cues.append(_cue(words, marked, group[:cut], style, max_chars))
                group = group[cut:]
            group.append(i)
        if group:
            cues.append(_cue(words, marked, group, style, max_chars))
    for i, cue in enumerate(cues):  # hold short cues, up to the next one
        limit = cues[i + 1].start if i + 1 < len(cues) else cue.start + min_seconds
        end = min(max(cue.end, cue.start + min_seconds), max(limit, cue.end))
        cues[i] = replace(cue, end=round(end, 3))
    return cues


def _break(marked: list[str], group: list[int]) -> int:
    """Where to cut a full cue: after the last clause-ending word in its second half, so a
    cue does not end mid-phrase and leave a word orphaned; else before the next word."""
    for k in range(len(group) - 1, len(group) // 2 - 1, -1):
        if marked[group[k]].endswith(tuple(",;:.!?")):
            return k + 1
    return len(group)


def _cue(words, marked: list[str], group: list[int], style: Cue, max_chars: int) -> Cue:
    """The cue of the words ``group``, styled as ``style``."""
    return replace(style, start=words[group[0]].start, end=words[group[-1]].end,
                   text="\n".join(wrap([marked[j] for j in group], max_chars)))


def wrap(words: Sequence[str], max_chars: int = MAX_CHARS) -> list[str]:
    """Greedy line filling; a word longer than a line gets a line of its own."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= max_chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def stylesheet() -> str:
    """CSS for the WebVTT classes: a colour per emotion, pale grey italics for ``unknown``
    (told apart from a face seen to be neutral), bold for strong emotion."""
    rules = [f"::cue(.{name}) {{ color: {colour}; }}" for name, colour in COLOURS.items()]
    rules.append(f"::cue(.{UNKNOWN}) {{ color: {UNKNOWN_COLOUR}; font-style: italic; }}")
    rules.append("::cue(.strong) { font-weight: bold; }")
    return "\n".join(rules) + "\n"


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT with an embedded STYLE block, one class per emotion and one per voice tag."""
    out = ["WEBVTT", "", "STYLE", stylesheet().rstrip("\n"), ""]
    for i, c in enumerate(cues, 1):
        classes = ".".join([c.emotion, *(["strong"] if c.strong else []), *c.voice])
        body = "\n".join(f"<c.{classes}>{html.escape(line, quote=False)}</c>"
                         for line in c.text.split("\n"))
        out += [str(i), f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}", body, ""]
    return "\n".join(out) + "\n"


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: the marked text only (SRT has no standard styling), in italics (``<i>``, which
    SRT players show) where the speaker's face was not seen."""
    out = []
    for i, c in enumerate(cues, 1):
        text = "\n".join(f"<i>{line}</i>" for line in c.text.split("\n")) if c.no_face \
            else c.text
        out += [str(i), f"{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}", text, ""]
    return "\n".join(out) + "\n"


def to_json(items: Sequence[EmotionalUtterance], cues: Sequence[Cue]) -> str:
    """Everything: utterances with words, times, emotion, probabilities; and the cues."""
    return json.dumps({"utterances": [x.as_dict() for x in items],
                       "cues": [{"start": c.start, "end": c.end, "text": c.text,
                                 "emotion": c.emotion, "strong": c.strong,
                                 "voice": list(c.voice), "no_face": c.no_face} for c in cues]},
                      indent=2, ensure_ascii=False) + "\n"


def caption_format(path: str | Path | None = None, fmt: str | None = None) -> str:
    """``fmt``, else the suffix of ``path``, else ``vtt``; ValueError for an unknown format."""
    suffix = Path(path).suffix.lstrip(".").lower() if path is not None else ""
    fmt = fmt or suffix or "vtt"
    if fmt not in FORMATS:
        raise ValueError(f"unknown caption format {fmt!r}; choose one of {list(FORMATS)}")
    return fmt


def render_captions(items: Sequence[EmotionalUtterance], fmt: str = "vtt", manner: bool = True,
                    emoji: bool = False) -> str:
    """The captions of ``items`` as the text of a ``fmt`` file (for a file or stdout)."""
    fmt = caption_format(None, fmt)
    cues = make_cues(items, manner=manner, emoji=emoji)
    if fmt == "json":
        return to_json(items, cues)
    return to_vtt(cues) if fmt == "vtt" else to_srt(cues)


def save_captions(path: str | Path, text: str, fmt: str | None = None) -> list[Path]:
    """Write captions rendered in ``fmt`` (default: from the suffix, else vtt) atomically;
    returns the files written (a WebVTT file comes with its stylesheet, ``NAME.css``)."""
    path = Path(path)
    atomic_write_text(path, text)
    if caption_format(path, fmt) != "vtt":
        return [path]
    css = path.with_suffix(".css")
    atomic_write_text(css, stylesheet())
    return [path, css]


def write_captions(path: str | Path, items: Sequence[EmotionalUtterance], fmt: str | None = None,
                   manner: bool = True, emoji: bool = False) -> list[Path]:
    """Write captions in ``fmt`` (default: from the suffix, else vtt) atomically; returns the
    files written."""
    fmt = caption_format(path, fmt)
    return save_captions(path, render_captions(items, fmt, manner, emoji), fmt)
