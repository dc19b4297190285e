"""Speech + face for a media file: what was said, when, and with which emotion.

:func:`caption_file` makes a file's captions, as text and, when asked, as files.
:func:`emotional_utterances` streams the soundtrack through speech recognition and, for videos,
the frames through the face pipeline (``facecue.stream``), lazily and in step, and fuses them
(:mod:`facecue.captions.fusion`). Audio-only files give utterances flagged ``no_face``.

The file is probed once (:func:`~facecue.speech.audio.probe`: both streams in one look) and each
stream is then decoded once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facecue import interrupts
from facecue.captions.cues import caption_format, render_captions, save_captions
from facecue.captions.fusion import EmotionalUtterance, fuse, with_baseline
from facecue.labels import DEFAULT_LABELS
from facecue.speech.audio import AudioError, MediaInfo, probe
from facecue.speech.transcribe import Transcriber

if TYPE_CHECKING:
    from facecue.video.pipeline import Pipeline


@dataclass(frozen=True)
class CaptionReport:
    """What :func:`caption_file` made."""

    items: tuple[EmotionalUtterance, ...]  # the utterances with their emotion, in time order
    text: str  # the captions rendered in ``fmt``
    files: tuple[Path, ...]  # written (caption file, and its stylesheet for vtt); () if none
    fmt: str  # vtt, srt or json
    compute_type: str  # speech recognition's arithmetic, as CTranslate2 runs it


def caption_file(media: str | Path, out: str | Path | None = None, fmt: str | None = None, *,
                 labels: str = DEFAULT_LABELS, pipeline: Pipeline | None = None,
                 transcriber: Transcriber | None = None, manner: bool = True,
                 emoji: bool = False,
                 on_utterance: Callable[[EmotionalUtterance], None] | None = None
                 ) -> CaptionReport:
    """Emotion-aware captions for a video or audio file, in ``fmt`` (default: from ``out``'s
    suffix, else vtt). With ``out`` they are written there (a vtt file with its ``NAME.css``);
    without, nothing is written and the report's ``text`` holds them.

    ``pipeline``: the face pipeline (default the shipped models), used only when the file
    has video; ``transcriber``: speech recognition (default :class:`Transcriber`). ``manner``:
    ``[manner]`` tags in the text; ``emoji``: end sentences with an emoji; ``on_utterance``:
    called with each utterance as soon as it is captioned (a long file shows progress, and what
    was shown stays shown if the run is stopped; the files are written only when complete), its
    voice judged against the speaker's voice so far; the report's items and the files judge
    every voice against the whole file's (:func:`~facecue.captions.fusion.with_baseline`). Raises
    :class:`~facecue.speech.audio.AudioError` when the file has no audio track (before Whisper
    is loaded, when no ``transcriber`` is given).
    """
    fmt = caption_format(out, fmt)
    path, info = _probe(media)
    transcriber = transcriber or Transcriber()
    items = []
    for item in _fused(path, info, labels, transcriber, pipeline):
        interrupts.check()  # a stop Python dropped still ends the captions here
        items.append(item)
        if on_utterance is not None:
            on_utterance(item)
    items = tuple(with_baseline(items))
    text = render_captions(items, fmt, manner, emoji)
    files = tuple(save_captions(out, text, fmt)) if out is not None else ()
    return CaptionReport(items, text, files, fmt, transcriber.model.model.compute_type)


def emotional_utterances(path: str | Path, labels: str = DEFAULT_LABELS,
                         transcriber: Transcriber | None = None,
                         pipeline: Pipeline | None = None) -> Iterator[EmotionalUtterance]:
    """Utterances of ``path`` with their speaker's emotion, as they are recognised
    (``pipeline``: the face pipeline to use, default the shipped models). Each voice is judged
    against the speaker's voice so far; :func:`~facecue.captions.fusion.with_baseline` judges
    them all against the whole file's.

    Raises :class:`~facecue.speech.audio.AudioError` when the file has no audio track.
    """
    path, info = _probe(path)
    yield from _fused(path, info, labels, transcriber or Transcriber(), pipeline)


def _probe(path: str | Path) -> tuple[Path, MediaInfo]:
    """The file's streams; AudioError when there is no audio to caption."""
    path = Path(path)
    info = probe(path)
    if not info.has_audio:
        raise AudioError(f"{path} has no audio track: nothing to caption")
    return path, info


def _fused(path: Path, info: MediaInfo, labels: str, transcriber: Transcriber,
           pipeline: Pipeline | None) -> Iterator[EmotionalUtterance]:
    """Recognised utterances fused with the video's frames, if it has video."""
    if info.has_video:
        from facecue.api import stream

        frames = stream(str(path), labels=labels, pipeline=pipeline)
    else:
        frames = iter(())
    yield from fuse(frames, transcriber.utterances(path))
