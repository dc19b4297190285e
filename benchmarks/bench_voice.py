"""Voice benchmark (loudness, pitch, pace, arousal: facecue.speech.voice) on real speech:
prints figures and whether each target is met; asserts nothing.

- cost: for every clip of ../shared/media/speech (32 LJSpeech sentences, jfk.flac), the time
  to measure the voice of its utterances as a share of the time to recognise them (Whisper
  base, 2 threads), per clip and over all; target <= 5 %;
- calm read speech: each LJSpeech utterance's voice relative to the reader's median over the
  32 clips (one speaker): the spread the tag thresholds must stay clear of, and the tags that
  fire (the target is none); jfk.flac against its own median;
- expressive speech from ``facecue say`` (espeak-ng, SSML prosody): each sentence said plainly
  and with every emotion's strong prosody, one speaker's set of recordings; arousal must order
  every strong/plain pair as the emotion's arousal does (anger, happiness, surprise, fear above
  plain; sadness below; strong anger above mild anger);
- ``--compare-pyin`` (needs ``pip install librosa``): librosa's pYIN beside Praat on the same
  clips with the same pitch range and frame step: time per second of audio, median F0
  agreement, and the median F0's shift with white noise at 10 dB SNR (the measurement behind
  choosing Praat).

    python benchmarks/bench_voice.py [--shared ../shared] [--threads 2] [--compare-pyin]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from facecue.captions.fusion import fuse_one, with_baseline
from facecue.captions.tts import say
from facecue.cpu import cpu_name
from facecue.speech.audio import SAMPLE_RATE, load_audio
from facecue.speech.transcribe import Transcriber
from facecue.speech.voice import (
    FAST,
    LOUD_DB,
    PITCH_CEILING,
    PITCH_FLOOR,
    PITCH_ST,
    QUIET_DB,
    SLOW,
    TIME_STEP,
    measure,
)

REPO = Path(__file__).resolve().parents[1]
SENTENCES = ["I cannot believe you did this to me today.",
             "We are leaving for the station at nine tomorrow morning.",
             "Please put the red box on the table by the door."]
# (higher arousal, lower arousal): (emotion, intensity) of espeak-ng's prosody
PAIRS = [(("anger", 0.9), ("neutral", 0.5)), (("happiness", 0.9), ("neutral", 0.5)),
         (("surprise", 0.9), ("neutral", 0.5)), (("fear", 0.9), ("neutral", 0.5)),
         (("neutral", 0.5), ("sad", 0.9)), (("anger", 0.9), ("anger", 0.5))]


def timed_utterances(tr: Transcriber, audio: np.ndarray) -> tuple[list, float, float]:
    """A clip's utterances with their voice; seconds spent recognising and measuring."""
    spans = [(0.0, audio)]
    tr.voice = False
    t = time.perf_counter()
    plain = tr.recognise(spans)
    asr = time.perf_counter() - t
    t = time.perf_counter()
    found = [replace(u, voice=measure(spans, u.words)) for u in plain]
    voice = time.perf_counter() - t
    tr.voice = True
    return found, asr, voice


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def bench_clips(shared: Path, tr: Transcriber) -> None:
    folder = shared / "media/speech"
    clips = sorted((folder / "ljspeech").glob("*.wav")) + [folder / "jfk/jfk.flac"]
    tr.recognise([(0.0, load_audio(clips[0]))])  # warm-up, not timed
    asr_s = voice_s = 0.0
    shares, per_clip = [], {}
    for clip in clips:
        audio = load_audio(clip)
        found, asr, voice = timed_utterances(tr, audio)
        asr_s, voice_s = asr_s + asr, voice_s + voice
        shares.append(voice / asr)
        per_clip[clip] = (found, len(audio) / SAMPLE_RATE, asr, voice)
    print(f"\ncost: {len(clips)} clips, recognition {asr_s:.1f} s, voice features {voice_s:.2f} s"
          f" = {voice_s / asr_s:.1%} of recognition (per clip: median "
          f"{np.median(shares):.1%}, max {max(shares):.1%}); voice "
          f"{1000 * voice_s / sum(v[1] for v in per_clip.values()):.1f} ms per audio second")
    share = voice_s / asr_s
    print(f"  target <= 5 % of recognition time: {'met' if share <= 0.05 else 'NOT MET'} "
          f"({share:.1%})")

    lj = [x for clip, v in per_clip.items() if clip.parent.name == "ljspeech" for x in v[0]]
    items = with_baseline([fuse_one([], u) for u in lj])
    jfk = with_baseline([fuse_one([], u) for u in per_clip[clips[-1]][0]])
    print("\nfeatures per utterance (absolute; relative to the speaker's median: LJSpeech's "
          "32 clips are one reader, jfk.flac is its own)")
    print(f"  {'clip':12s} {'dBFS':>6s} {'F0 Hz':>6s} {'range':>5s} {'w/s':>5s} {'voiced':>6s} |"
          f" {'dB':>5s} {'st':>5s} {'rng st':>6s} {'rate':>5s} {'arousal':>7s} tags")
    it = iter([*items, *jfk])
    for clip, (found, *_) in per_clip.items():
        for _ in found:
            x = next(it)
            a, v = x.voice.features, x.voice
            print(f"  {clip.stem:12s} {a.loudness:6.1f} {fmt(a.pitch, '6.1f')} "
                  f"{fmt(a.pitch_range, '5.1f')} {fmt(a.rate, '5.2f')} {a.voiced:6.2f} |"
                  f" {v.loudness:+5.1f} {fmt(v.pitch, '+5.1f')} {fmt(v.pitch_range, '+6.1f')}"
                  f" {fmt(v.rate, '5.2f')} {v.arousal:7.2f} {' '.join(v.tags)}")
    calm = [x.voice for x in items]
    rates = [v.rate for v in calm if v.rate is not None]
    pitches = [v.pitch for v in calm if v.pitch is not None]
    tagged = sum(bool(v.tags) for v in [*calm, *(x.voice for x in jfk)])
    print(f"\ncalm read speech (LJSpeech, {len(calm)} utterances) against its median: loudness "
          f"{min(v.loudness for v in calm):+.1f}..{max(v.loudness for v in calm):+.1f} dB "
          f"(tags at +{LOUD_DB:g} / -{QUIET_DB:g}), pitch {min(pitches):+.1f}..{max(pitches):+.1f}"
          f" st (shouting also needs +{PITCH_ST:g}), rate x{min(rates):.2f}..x{max(rates):.2f}"
          f" (tags at x{FAST:g} / x{SLOW:g}), arousal {min(v.arousal for v in calm):.2f}.."
          f"{max(v.arousal for v in calm):.2f}")
    print(f"  target: no voice tag on calm read speech (LJSpeech, jfk.flac): "
          f"{'met' if not tagged else f'NOT MET ({tagged} tagged)'}")


def bench_pairs(tr: Transcriber) -> None:
    if not shutil.which("espeak-ng"):
        print("\nexpressive pairs: skipped, espeak-ng is not installed")
        return
    versions = sorted({v for pair in PAIRS for v in pair})
    right = total = 0
    print("\nexpressive speech (facecue say): arousal per version, per sentence; "
          "loudness dB / pitch st / rate x against the sentence's median")
    with tempfile.TemporaryDirectory() as tmp:
        for n, sentence in enumerate(SENTENCES):
            found = {}
            for emotion, intensity in versions:
                path = Path(tmp) / f"{n}-{emotion}-{intensity}.wav"
                say(sentence, path, emotion, intensity)
                (u, *_) = tr.recognise([(0.0, load_audio(path))])
                found[emotion, intensity] = fuse_one([], u)
            judged = dict(zip(found, with_baseline(list(found.values())), strict=True))
            print(f"  {sentence}")
            for (emotion, intensity), x in judged.items():
                v = x.voice
                print(f"    {emotion:9s} {intensity:.1f}: arousal {v.arousal:.2f} "
                      f"({v.loudness:+5.1f} dB, {fmt(v.pitch, '+5.1f')} st, "
                      f"x{fmt(v.rate, '.2f')}) {' '.join(v.tags)}")
            for high, low in PAIRS:
                ok = judged[high].voice.arousal > judged[low].voice.arousal
                right, total = right + ok, total + 1
                if not ok:
                    print(f"    WRONG ORDER: {high} should be above {low}")
    print(f"  target: arousal orders every strong/plain pair: "
          f"{'met' if right == total else 'NOT MET'} ({right}/{total})")


def bench_pyin(shared: Path) -> None:
    try:
        import librosa
    except ImportError:
        print("\n--compare-pyin needs librosa: pip install librosa")
        return
    import parselmouth

    clips = sorted((shared / "media/speech/ljspeech").glob("*.wav"))[:8] + \
        [shared / "media/speech/jfk/jfk.flac"]
    rng = np.random.default_rng(0)

    def praat(x):
        f = parselmouth.Sound(x.astype(np.float64), SAMPLE_RATE).to_pitch_ac(
            time_step=TIME_STEP, pitch_floor=PITCH_FLOOR,
            pitch_ceiling=PITCH_CEILING).selected_array["frequency"]
        return f[f > 0]

    def pyin(x):
        f, voiced, _ = librosa.pyin(x, fmin=PITCH_FLOOR, fmax=PITCH_CEILING, sr=SAMPLE_RATE,
                                    frame_length=1024, hop_length=int(TIME_STEP * SAMPLE_RATE))
        return f[voiced]

    def st(f):
        return 12 * math.log2(float(np.median(f)))

    pyin(load_audio(clips[0])[:SAMPLE_RATE])  # numba compiles on first use: not timed
    seconds = {"praat": 0.0, "pyin": 0.0}
    shift = {"praat": [], "pyin": []}
    agree, audio_s = [], 0.0
    for clip in clips:
        x = load_audio(clip)
        audio_s += len(x) / SAMPLE_RATE
        noise = rng.normal(size=len(x)).astype(np.float32)
        noisy = x + noise * np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2) / 10)
        medians = {}
        for name, track in (("praat", praat), ("pyin", pyin)):
            t = time.perf_counter()
            f = track(x)
            seconds[name] += time.perf_counter() - t
            medians[name] = st(f)
            shift[name].append(abs(st(track(noisy)) - medians[name]))
        agree.append(abs(medians["praat"] - medians["pyin"]))
    print(f"\npitch trackers on {len(clips)} clips ({audio_s:.0f} s of speech):")
    for name in seconds:
        print(f"  {name:5s}: {1000 * seconds[name] / audio_s:6.1f} ms per audio second; median "
              f"F0 moved by noise (10 dB SNR): max {max(shift[name]):.2f} st, mean "
              f"{np.mean(shift[name]):.2f} st")
    print(f"  the two trackers' median F0 differ by max {max(agree):.2f} st")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compare-pyin", action="store_true")
    args = ap.parse_args()
    print(f"CPU: {cpu_name()}; {args.threads} threads; load average at start "
          f"{os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)", flush=True)
    tr = Transcriber(cpu_threads=args.threads)
    bench_clips(args.shared, tr)
    bench_pairs(tr)
    if args.compare_pyin:
        bench_pyin(args.shared)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (above ~0.5 per CPU: other work "
          f"ran beside the benchmark and its timings are contended)")


if __name__ == "__main__":
    main()
