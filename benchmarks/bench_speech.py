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
        [--compute-types float32,int8,int8_float32,int16@mkl] [--clips N] [--windows short,full]

Whisper runs with facecue's compute type for this CPU (``transcribe.default_compute_type``)
unless ``--compute-types`` lists others: each runs in its own process (CTranslate2 picks its
CPU backend when it loads) and gets the WER, RTF and live parts; the GRID part runs with the
first. ``TYPE@mkl`` runs TYPE with ``CT2_USE_MKL=1``: CTranslate2's MKL backend, its default on
Intel CPUs only and the only one offering int16. A table at the end puts the types side by side,
with how many clips' words (normalised, as WER counts them) differ from the float32 run and
between the short and the full window. ``--clips N`` takes the first N LJSpeech clips,
``--windows short`` skips the full window.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facecue.cpu import cpu_name, exact_int8, int8_reason
from facecue.speech.audio import SAMPLE_RATE, load_audio
from facecue.speech.grammar import Grammar
from facecue.speech.transcribe import Transcriber, default_compute_type
from facecue.speech.wer import normalise, word_errors

REPO = Path(__file__).resolve().parents[1]
# The GRID grammar (Cooke et al. 2006): command, colour, preposition, letter (no W), digit,
# adverb. Every GRID sentence is one word of each, so this is what a GRID user would give.
GRID_GRAMMAR = Grammar.read(REPO / "examples/grid.grammar")


def bench_asr(shared: Path, tr: Transcriber, windows: list[str], clips: int) -> dict:
    out = {}
    for window in windows:
        tr.short_window = window == "short"
        print("encoder window: " + ("speech + 5 s (facecue)" if tr.short_window
                                    else "full 30 s (Whisper)"))
        out[window] = _bench_asr(shared, tr, clips)
    tr.short_window = True
    return out


def _bench_asr(shared: Path, tr: Transcriber, clips: int) -> dict:
    folder = shared / "media/speech/ljspeech"
    with open(folder / "transcripts.csv", newline="") as f:
        refs = {row["file"]: row["normalized_transcript"] for row in csv.DictReader(f)}
    refs = dict(sorted(refs.items())[:clips or None])
    list(tr.utterances([load_audio(folder / next(iter(refs)))]))  # warm-up, not timed
    edits = words = 0
    audio_s = compute_s = cpu_s = 0.0
    hyps = {}
    for name, ref in refs.items():
        audio = load_audio(folder / name)
        t, c = time.perf_counter(), time.process_time()
        hyp = " ".join(u.text for u in tr.utterances([audio]))
        compute_s += time.perf_counter() - t
        cpu_s += time.process_time() - c
        audio_s += len(audio) / SAMPLE_RATE
        hyps[name] = normalise(hyp)
        e, n = word_errors(ref, hyp)
        edits, words = edits + e, words + n
        if e:
            print(f"  {name}: {e}/{n}  ref={ref!r}\n  {' ' * len(name)}  hyp={hyp!r}")
    print(f"LJSpeech WER {edits}/{words} = {edits / words:.2%} over {len(refs)} clips")
    print(f"recognition RTF {compute_s:.1f} s / {audio_s:.1f} s = {compute_s / audio_s:.3f}"
          f" wall; CPU {cpu_s:.1f} s = {cpu_s / audio_s:.3f} (on a free machine with N threads,"
          f" wall ~ CPU / N)")
    return {"edits": edits, "words": words, "clips": len(refs), "rtf": compute_s / audio_s,
            "cpu_rtf": cpu_s / audio_s, "hyps": hyps}


def bench_live(shared: Path, tr: Transcriber, chunk: float = 0.1) -> dict:
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
    return {"lines": len(lines), "max": max(delays), "mean": sum(delays) / len(delays),
            "text": [line.sentence for line in lines]}


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


def run_one(args: argparse.Namespace, spec: str, grid: bool) -> dict:
    """One compute type's parts, in this process: what :func:`main`'s table needs."""
    compute_type = spec.split("@")[0]
    tr = Transcriber(cpu_threads=args.threads, compute_type=compute_type)
    parts = set(args.only.split(","))
    result: dict = {"spec": spec, "runs_as": tr.model.model.compute_type}
    print(f"== Whisper compute type {spec} (CTranslate2 runs {result['runs_as']})", flush=True)
    if "asr" in parts:
        result["asr"] = bench_asr(args.shared, tr, args.windows.split(","), args.clips)
    if "live" in parts:
        result["live"] = bench_live(args.shared, tr)
    if grid and "grid" in parts:
        bench_grid(args.shared, tr)
    return result


def run_child(args: argparse.Namespace, spec: str, grid: bool) -> dict:
    """:func:`run_one` in a fresh process (``@mkl``: with ``CT2_USE_MKL=1``)."""
    env = dict(os.environ)
    if spec.endswith("@mkl"):
        env["CT2_USE_MKL"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--shared", str(args.shared), "--threads",
               str(args.threads), "--only", args.only, "--clips", str(args.clips), "--windows",
               args.windows, "--child", spec, "--child-result", str(out)]
        if grid:
            cmd.append("--child-grid")
        subprocess.run(cmd, env=env, check=True)
        return json.loads(out.read_text())


def differing(a: dict, b: dict) -> int:
    """How many clips' normalised words differ between two runs of one window."""
    return sum(a["hyps"][k] != b["hyps"][k] for k in a["hyps"])


def table(results: list[dict], windows: list[str]) -> None:
    ref = next((r for r in results if r["spec"] == "float32"), results[0])
    print(f"\nside by side (words compared with the {ref['spec']} run, normalised as WER counts "
          f"them; RTF = wall seconds / audio seconds)")
    head = ["compute type", "runs as"]
    for w in windows:
        head += [f"WER {w}", f"RTF {w} (CPU)", f"clips != {ref['spec']} ({w})"]
    if len(windows) == 2:
        head.append("clips short != full")
    head.append("live max / mean s")
    rows = [head]
    for r in results:
        row = [r["spec"], r["runs_as"]]
        asr = r.get("asr", {})
        for w in windows:
            a = asr.get(w)
            if a is None:
                row += ["-", "-", "-"]
                continue
            same = differing(a, ref["asr"][w])
            row += [f"{a['edits'] / a['words']:.2%} ({a['edits']}/{a['words']})",
                    f"{a['rtf']:.3f} ({a['cpu_rtf']:.3f})", f"{same} of {a['clips']}"]
        if len(windows) == 2:
            row.append(f"{differing(asr['short'], asr['full'])}" if asr else "-")
        live = r.get("live")
        row.append(f"{live['max']:.2f} / {live['mean']:.2f}" if live else "-")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="asr,live,grid")
    ap.add_argument("--compute-types", default=default_compute_type(),
                    help="CTranslate2 compute types, comma-separated; TYPE@mkl runs TYPE on "
                         "CTranslate2's MKL backend (default: %(default)s, facecue's choice "
                         "on this CPU)")
    ap.add_argument("--clips", type=int, default=0,
                    help="the first N LJSpeech clips only (default: all 32)")
    ap.add_argument("--windows", default="short,full", metavar="short,full",
                    choices=["short,full", "short", "full"],
                    help="encoder windows for the WER/RTF part (default: %(default)s)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-result", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-grid", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = run_one(args, args.child, args.child_grid)
        args.child_result.write_text(json.dumps(result))
        return
    import ctranslate2

    print(f"CPU: {cpu_name()}; {int8_reason()}; exact 8-bit products: {exact_int8()}; "
          f"facecue's Whisper compute type here: {default_compute_type()}")
    print(f"CTranslate2 {ctranslate2.__version__}, compute types offered on this CPU: "
          f"{', '.join(sorted(ctranslate2.get_supported_compute_types('cpu')))}; "
          f"load average at start {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)", flush=True)
    specs = args.compute_types.split(",")
    results = [run_child(args, spec, grid=i == 0) for i, spec in enumerate(specs)]
    print(f"load average at the end {os.getloadavg()[0]:.2f} (above ~0.5 per CPU: other work "
          f"ran beside the benchmark and its timings are contended)")
    if "asr" in args.only or "live" in args.only:
        table(results, args.windows.split(","))


if __name__ == "__main__":
    main()
