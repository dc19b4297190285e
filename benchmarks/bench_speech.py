"""Speech benchmark on the real media in ../shared: prints figures, asserts nothing.

- WER over the 32 LJSpeech clips (normalisation: facecue.speech.wer.normalise) and the recognition
  real-time factor (compute seconds / audio seconds) on 2 threads, with the short encoder
  window facecue uses and with Whisper's full 30 s window side by side;
- live latency: jfk.flac fed in 0.1 s chunks at real-time pace to a LiveCaptioner; for each
  caption line, the wall time from the end of its last word to the line being ready;
- end to end on the four GRID clips: `facecue caption`'s pipeline, WER of the caption text
  against the known sentence, and whether every cue lies inside the clip's speech; once as
  is, once with `--vocabulary` set to the GRID corpus's published word list (all 51 words
  of its grammar, not the clips' sentences), and once with `--grammar examples/grid.grammar`
  (the published grammar: each stretch of speech read as one of its sentences).

    python benchmarks/bench_speech.py [--shared ../shared] [--threads 2] [--only asr,live,grid]
        [--compute-types int8,float32]

Whisper runs with facecue's compute type for this CPU (``transcribe.default_compute_type``:
int8 where 8-bit products are exact, else float32); ``--compute-types`` lists others, each of
which gets the WER and RTF part, the first of them the rest.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from pathlib import Path

from facecue.cpu import exact_int8
from facecue.speech.audio import SAMPLE_RATE, load_audio
from facecue.speech.grammar import Grammar
from facecue.speech.transcribe import Transcriber, default_compute_type
from facecue.speech.wer import word_errors

REPO = Path(__file__).resolve().parents[1]
# The GRID grammar (Cooke et al. 2006): command, colour, preposition, letter (no W), digit,
# adverb. Every GRID sentence is one word of each, so this is what a GRID user would give.
GRID_GRAMMAR = Grammar.read(REPO / "examples/grid.grammar")


def bench_asr(shared: Path, tr: Transcriber) -> None:
    for short in (True, False):
        tr.short_window = short
        print(f"encoder window: {'speech + 5 s (facecue)' if short else 'full 30 s (Whisper)'}")
        _bench_asr(shared, tr)
    tr.short_window = True


def _bench_asr(shared: Path, tr: Transcriber) -> None:
    folder = shared / "media/speech/ljspeech"
    with open(folder / "transcripts.csv", newline="") as f:
        refs = {row["file"]: row["normalized_transcript"] for row in csv.DictReader(f)}
    edits = words = 0
    audio_s = compute_s = cpu_s = 0.0
    for name, ref in sorted(refs.items()):
        audio = load_audio(folder / name)
        t, c = time.perf_counter(), time.process_time()
        hyp = " ".join(u.text for u in tr.utterances([audio]))
        compute_s += time.perf_counter() - t
        cpu_s += time.process_time() - c
        audio_s += len(audio) / SAMPLE_RATE
        e, n = word_errors(ref, hyp)
        edits, words = edits + e, words + n
        if e:
            print(f"  {name}: {e}/{n}  ref={ref!r}\n  {' ' * len(name)}  hyp={hyp!r}")
    print(f"LJSpeech WER {edits}/{words} = {edits / words:.2%} over {len(refs)} clips")
    print(f"recognition RTF {compute_s:.1f} s / {audio_s:.1f} s = {compute_s / audio_s:.3f}"
          f" wall; CPU {cpu_s:.1f} s = {cpu_s / audio_s:.3f} (on a free machine with N threads,"
          f" wall ~ CPU / N)")


def bench_live(shared: Path, tr: Transcriber, chunk: float = 0.1) -> None:
    from facecue.captions.live import LiveCaptioner

    audio = load_audio(shared / "media/speech/jfk/jfk.flac")
    live = LiveCaptioner(tr)
    step = int(chunk * SAMPLE_RATE)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(audio), step):
        time.sleep(max(0.0, t0 + i / SAMPLE_RATE - time.perf_counter()))
        live.feed_audio(audio[i:i + step])
    time.sleep(max(0.0, t0 + len(audio) / SAMPLE_RATE + 1.5 - time.perf_counter()))
    lines = live.close()
    cpu = time.process_time() - c0  # nearly all of it recognition: the feeder only sleeps
    delays = [line.ready_at - (t0 + line.item.utterance.end) for line in lines]
    for line, d in zip(lines, delays, strict=True):
        u = line.item.utterance
        print(f"  {u.start:6.2f}-{u.end:6.2f} s  +{d:.2f} s  {line.sentence}")
    print(f"live latency (utterance end -> caption line), {len(lines)} lines: "
          f"max {max(delays):.2f} s, mean {sum(delays) / len(delays):.2f} s; CPU per line "
          f"{cpu / len(lines):.2f} s (VAD waits {live.segmenter.min_silence:.2f} s of silence)")


def bench_grid(shared: Path, tr: Transcriber) -> None:
    for how, vocabulary, grammar in (
            ("as is (no vocabulary)", None, None),
            ("with --vocabulary (the GRID grammar's 51 words)", GRID_GRAMMAR.words, None),
            ("with --grammar examples/grid.grammar", None, GRID_GRAMMAR)):
        tr.vocabulary, tr.grammar = vocabulary, grammar
        print("GRID, " + how)
        _bench_grid(shared, tr)
    tr.vocabulary = tr.grammar = None


def _bench_grid(shared: Path, tr: Transcriber) -> None:
    from facecue.captions.cues import make_cues
    from facecue.captions.media import emotional_utterances
    from facecue.speech.segment import SpeechSegmenter

    sys.path.insert(0, str(REPO / "tests"))
    from pipeline_support import make_pipeline  # the shipped models

    videos = shared / "media/videos"
    with open(videos / "grid_transcripts.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    edits = words = 0
    for row in rows:
        clip = videos / row["file"]
        t = time.perf_counter()
        items = list(emotional_utterances(clip, transcriber=tr, pipeline=make_pipeline()))
        seconds = time.perf_counter() - t
        cues = make_cues(items)
        text = " ".join(re.sub(r"\[[^\]]+\]", "", c.text) for c in cues)
        e, n = word_errors(row["sentence"], text)
        edits, words = edits + e, words + n
        spans = [s for step in SpeechSegmenter().spans([load_audio(clip)]) for s in step]
        lo, hi = spans[0][0], spans[-1][0] + len(spans[-1][1]) / SAMPLE_RATE
        inside = all(lo - 0.05 <= c.start < c.end <= hi + 0.05 for c in cues)
        print(f"  {row['file']}: {e}/{n} ref={row['sentence']!r} caption={text!r} speech "
              f"{lo:.2f}-{hi:.2f} s, cues inside: {inside}, "
              f"emotion {[x.emotion for x in items]}, {seconds:.1f} s")
    print(f"GRID caption WER {edits}/{words} = {edits / words:.2%} over {len(rows)} clips")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="asr,live,grid")
    ap.add_argument("--compute-types", default=default_compute_type(),
                    help="CTranslate2 compute types, comma-separated (default: %(default)s, "
                         "facecue's choice on this CPU)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    print(f"CPU with exact 8-bit products (VNNI or not x86): {exact_int8()}; facecue's Whisper "
          f"compute type here: {default_compute_type()}")
    for compute_type in reversed(args.compute_types.split(",")):  # the first one last: kept
        tr = Transcriber(cpu_threads=args.threads, compute_type=compute_type)
        if "asr" in parts:
            print(f"== Whisper compute type {compute_type}")
            bench_asr(args.shared, tr)
    if "grid" in parts:
        bench_grid(args.shared, tr)
    if "live" in parts:
        bench_live(args.shared, tr)


if __name__ == "__main__":
    main()
