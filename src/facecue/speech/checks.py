"""Signs that a Whisper pass made text up instead of reading the speech: a decode going round
in a loop, words stacked at one instant past the speech, or tokens it was unsure of. Each
test reads faster-whisper's segments (``.text``, ``.words``, ``.compression_ratio``,
``.avg_logprob``) and nothing else."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# faster-whisper's own thresholds for a failed decode: looping text, unsure tokens
LOOPING_RATIO, UNSURE_LOGPROB = 2.4, -1.0


def repeats_phrase(text: str, words: int = 4) -> bool:
    """Whether some run of ``words`` words occurs twice in ``text`` (a decode going round
    in a loop repeats itself, often with small changes between the rounds)."""
    w = [x for x in (t.strip(".,!?;:\"'").lower() for t in text.split()) if x]
    grams = [tuple(w[i:i + words]) for i in range(len(w) - words + 1)]
    return len(set(grams)) < len(grams)


def stacks_words(segments: Iterable, words: int = 3) -> bool:
    """Whether ``words`` words in a row have no duration: Whisper's alignment stacks words it
    finds nowhere in the audio at one instant, the mark of text made up past the speech (on
    the 32 LJSpeech clips and jfk.flac no more than one zero-length word ever came in a row)."""
    run = 0
    for w in (w for s in segments for w in s.words or []):
        run = run + 1 if w.end - w.start < 0.005 else 0
        if run >= words:
            return True
    return False


def looks_failed(segments: Sequence) -> bool:
    """Whether a pass looks failed: looping (a four-word phrase said twice, words stacked at
    one instant, or text so repetitive its compression ratio is over Whisper's limit) or
    unsure (mean token log-prob below ``UNSURE_LOGPROB``, e.g. a word made up from the
    padding after the speech)."""
    return (repeats_phrase(" ".join(s.text for s in segments)) or stacks_words(segments)
            or any(s.compression_ratio > LOOPING_RATIO or s.avg_logprob < UNSURE_LOGPROB
                   for s in segments))
