"""Studio benchmark: drives the live and file pages in Debian's Chromium (Playwright, headless,
a fake camera and microphone playing real media) against a real `facecue studio` server on
127.0.0.1, and prints the figures of issue #24 against their targets. Asserts nothing.

- live page, 640x480 fake camera (pyfeat_single_face.mp4, padded to 4:3, looping) and fake
  microphone (jfk.flac at 48 kHz, real-time pace, looping), measured together over
  ``--seconds`` after a warm-up: overlay FPS (overlays drawn per second; target >= 25) and
  the median time from a frame leaving the page to its overlay being drawn (target <= 60
  ms), once per frame transport (``--frames jpeg,raw``: JPEG, the page's default, or raw
  RGBA pixels); the caption delay: for each caption line, the time it was shown minus the
  end of its last word, both on the page's clock (target <= 1.5 s);
- file page: a 10 s shared clip (fr_short_hamilton_clip.mp4) uploaded and processed
  (faces, annotated MP4 with sound, speech, captions): processing time against the clip's duration
  (target: less), and the wall time from choosing the file to the chart being drawn.

    python benchmarks/bench_studio.py [--shared ../shared] [--seconds 20] [--frames jpeg,raw]
        [--screenshot docs/img/studio_live.png]

``--screenshot`` saves the live page once a caption is shown (the image in docs/studio.md).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from facecue.cpu import cpu_name
from facecue.studio.app import StudioSettings
from facecue.studio.server import running
from facecue.video.pipeline import usable_cores

CHROMIUM = "/usr/lib/chromium/chromium"
TARGETS = {"fps": 25.0, "latency_ms": 60.0, "caption_s": 1.5}


def make_media(shared: Path, folder: Path) -> tuple[Path, Path]:
    """The fake camera's y4m (640x480, 30 fps) and the fake microphone's 48 kHz mono WAV."""
    clip, speech = folder / "camera.y4m", folder / "jfk48k.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i",
                    str(shared / "media/videos/pyfeat_single_face.mp4"), "-vf",
                    "scale=640:360,pad=640:480:0:60,fps=30", "-pix_fmt", "yuv420p", "-an",
                    str(clip)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i",
                    str(shared / "media/speech/jfk/jfk.flac"), "-ar", "48000", "-ac", "1",
                    str(speech)], check=True)
    return clip, speech


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    met = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return f"target {sign} {target:g}: {'met' if met else 'NOT MET'}"


def live(p, base: str, clip: Path, speech: Path, frames: str, seconds: float,
         screenshot: Path | None) -> dict:
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
        f"--use-file-for-fake-audio-capture={speech}"])
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + ("/?frames=raw" if frames == "raw" else "/"))
        page.click("#start")
        page.wait_for_function("window.studioStats && studioStats.drawn >= 30", timeout=60_000)
        time.sleep(2.0)  # warm-up
        window = "[performance.now(), studioStats.latencies.length]"
        start, lat_from = page.evaluate(window)
        time.sleep(seconds)
        end, lat_to = page.evaluate(window)
        stats = page.evaluate("studioStats")
        if screenshot is not None:
            page.wait_for_function("studioStats.captions.length >= 1", timeout=60_000)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
            stats = page.evaluate("studioStats")
    finally:
        browser.close()
    drawn = sum(1 for t in stats["drawTimes"] if start <= t <= end)
    latencies = stats["latencies"][lat_from:lat_to]
    delays = [c["shown"] - c["end"] for c in stats["captions"]]
    return {"fps": drawn / ((end - start) / 1000), "latency_ms": statistics.median(latencies),
            "latency_p90_ms": statistics.quantiles(latencies, n=10)[-1],
            "server_ms": statistics.median(stats["serverMs"]), "captions": stats["captions"],
            "delays": delays, "errors": stats["errors"]}


def upload(p, base: str, clip: Path) -> dict:
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    try:
        page = browser.new_page()
        page.goto(base + "/file")
        page.wait_for_function("document.getElementById('limit').textContent.length > 0")
        t0 = time.perf_counter()
        page.set_input_files("#file", str(clip))
        page.wait_for_function("window.studioChart !== null", timeout=300_000)
        wall = time.perf_counter() - t0
        text = page.text_content("#progress-text")
        error = page.text_content("#message")
    finally:
        browser.close()
    found = re.search(r"([\d.]+) s of video processed in ([\d.]+) s; (\d+) utterance", text)
    if not found:
        raise RuntimeError(f"the file page did not finish: {text!r} {error!r}")
    duration, seconds, utterances = float(found[1]), float(found[2]), int(found[3])
    return {"duration": duration, "seconds": seconds, "utterances": utterances, "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--seconds", type=float, default=20.0, help="live measuring window")
    ap.add_argument("--frames", default="jpeg,raw", help="frame transports to measure")
    ap.add_argument("--clip", default="media/videos/fr_short_hamilton_clip.mp4",
                    help="the upload, relative to --shared")
    ap.add_argument("--screenshot", type=Path, help="save the live page here (PNG)")
    args = ap.parse_args()

    print(f"CPU: {cpu_name()}, {usable_cores()} cores usable, load average before the run "
          f"{os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp, running(StudioSettings()) as studio, \
            sync_playwright() as p:
        clip, speech = make_media(args.shared, Path(tmp))
        base = studio.url
        for i, frames in enumerate(args.frames.split(",")):
            r = live(p, base, clip, speech, frames, args.seconds,
                     args.screenshot if i == 0 else None)
            print(f"live, {frames} frames, 640x480 camera, {args.seconds:g} s:")
            print(f"  overlay FPS {r['fps']:.1f} ({verdict(r['fps'], TARGETS['fps'], True)})")
            print(f"  frame leaves page -> overlay drawn: median {r['latency_ms']:.1f} ms "
                  f"({verdict(r['latency_ms'], TARGETS['latency_ms'], False)}), 90th "
                  f"percentile {r['latency_p90_ms']:.1f} ms; server {r['server_ms']:.1f} ms")
            for c, d in zip(r["captions"], r["delays"], strict=True):
                print(f"  caption {d:5.2f} s after its utterance ended: {c['text']}")
            if r["delays"]:
                worst = max(r["delays"])
                print(f"  caption delay over {len(r['delays'])} lines: median "
                      f"{statistics.median(r['delays']):.2f} s, worst {worst:.2f} s "
                      f"({verdict(worst, TARGETS['caption_s'], False)} for every line)")
            else:
                print("  caption delay: no caption was shown (target <= 1.5 s: NOT MET)")
            if r["errors"]:
                print(f"  page errors: {r['errors']}")
        u = upload(p, base, args.shared / args.clip)
        print(f"upload {Path(args.clip).name}: {u['duration']:.1f} s of video processed in "
              f"{u['seconds']:.1f} s ({'met' if u['seconds'] < u['duration'] else 'NOT MET'}: "
              f"target less than its duration); {u['utterances']} utterance(s); "
              f"{u['wall']:.1f} s from choosing the file to the chart")
    if args.screenshot:
        print(f"wrote {args.screenshot}")


if __name__ == "__main__":
    main()
