"""``facecue caption`` and ``say``: emotion-aware captions and expressive speech."""

from __future__ import annotations

import argparse
import sys

from facecue.captions.sentences import EMOTIONS, STRONG
from facecue.cli import add_model_options, add_workers_option, command, load_pipeline, log


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "caption", "emotion-aware captions for a video or audio file: printed, "
                "or written with --out (needs facecue[speech])",
                "facecue caption ../shared/media/videos/grid_pwij3p.mpg > grid.vtt", _caption)
    p.add_argument("media", help="video or audio file (wav, flac, mp3, ogg, mp4, ...)")
    p.add_argument("--format", choices=["vtt", "srt", "json"], default=None,
                   help="caption format (default: --out's suffix, else vtt)")
    p.add_argument("--out", help="caption file to write (a .vtt also gets its .css beside it);"
                   " without it the captions go to standard output")
    p.add_argument("--no-manner", action="store_true", help="no [manner] tags in the text")
    p.add_argument("--emoji", action="store_true", help="end sentences with an emoji")
    add_model_options(p, threads=2,
                      threads_help="threads for speech recognition and for each face model")
    add_workers_option(p)
    add_language_options(p)

    p = command(sub, "say", "speak text with an emotion's prosody into a WAV file "
                "(needs espeak-ng)", 'facecue say "What a lovely day" --emotion happiness '
                "--out lovely.wav", _say)
    p.add_argument("text", help="what to say")
    p.add_argument("--emotion", choices=EMOTIONS, default="neutral",
                   help="whose prosody to use (default neutral)")
    p.add_argument("--intensity", type=float, default=0.5,
                   help=f"0..1; from {STRONG} on the emotion is strong (default 0.5)")
    p.add_argument("--voice", default="en-us", help="espeak-ng voice (default en-us)")
    p.add_argument("--out", required=True, help="WAV file to write")
    p.add_argument("--ssml", action="store_true", help="also print the SSML")


def add_language_options(p: argparse.ArgumentParser) -> None:
    """What speech recognition should expect, and its arithmetic."""
    what = p.add_mutually_exclusive_group()
    what.add_argument("--vocabulary", help="words the speech likely holds (names, jargon), "
                      "given to speech recognition as hot words")
    what.add_argument("--grammar", help="command grammar file (one slot per line, "
                      "alternatives separated by |): each stretch of speech is read as one of "
                      "its sentences; see examples/grid.grammar")
    p.add_argument("--compute-type", choices=["int8", "float32"], default=None,
                   help="speech recognition arithmetic (default: int8 where this CPU's 8-bit "
                   "products are exact, float32 on x86 CPUs without VNNI)")


def make_transcriber(args: argparse.Namespace, **kwargs):
    """The speech recogniser :func:`add_language_options` describes."""
    from facecue.speech.grammar import Grammar
    from facecue.speech.transcribe import Transcriber

    grammar = Grammar.read(args.grammar) if args.grammar else None
    return Transcriber(vocabulary=args.vocabulary, grammar=grammar,
                       compute_type=args.compute_type, **kwargs)


def _caption(args: argparse.Namespace) -> int:
    from facecue.captions.media import caption_file

    transcriber = make_transcriber(args, cpu_threads=args.threads)
    log.info("speech recognition: Whisper base, %s arithmetic",
             transcriber.model.model.compute_type)  # as CTranslate2 runs it

    def tell(item) -> None:  # each utterance as soon as it is captioned
        log.info("%7.2f-%7.2f  %-9s %s  (%s)", item.utterance.start, item.utterance.end,
                 item.emotion, item.sentence(not args.no_manner, args.emoji), describe(item))

    report = caption_file(args.media, args.out, args.format, labels=args.labels,
                          pipeline=load_pipeline(args), transcriber=transcriber,
                          manner=not args.no_manner, emoji=args.emoji, on_utterance=tell)
    if not report.items:
        log.info("no speech found: the captions have no cues")
    if args.out is None:
        sys.stdout.write(report.text)
    else:
        log.info("wrote %s", ", ".join(map(str, report.files)))
    return 0


def describe(item) -> str:
    """What fusion saw of an utterance, for a log line: flags and the voice against the
    speaker's usual one."""
    parts = [f for f in ("no_face", "disagree") if getattr(item, f)]
    v = item.voice
    if v is not None:
        pitch = f", {v.pitch:+.1f} st" if v.pitch is not None else ""
        rate = f", rate x{v.rate:.2f}" if v.rate is not None else ""
        parts.append(f"voice: arousal {v.arousal:.2f}, {v.loudness:+.1f} dB{pitch}{rate}")
    return "; ".join(parts) or "face and words only"


def _say(args: argparse.Namespace) -> int:
    from facecue.captions.tts import say, ssml

    if args.ssml:
        print(ssml(args.text, args.emotion, args.intensity))
    log.info("wrote %s", say(args.text, args.out, args.emotion, args.intensity, args.voice))
    return 0
