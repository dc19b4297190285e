"""Faults around `run`, `analyze` and `caption`: signals, full disks, unwritable outputs, hostile
images, clips cut short, lost cameras, SIGKILL, and a long soak. Real subprocesses, real
signals, a real file-size limit (``ulimit -f``) and files made from ../shared."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import pytest
from pipeline_support import make_pipeline, model_args, read_frames

from facecue.api import run
from facecue.cli import main
from facecue.video.sources import Frame, FrameSource, SourceError, VideoSource

REPO = Path(__file__).resolve().parents[1]
LONG_CLIP = "media/videos/pyfeat_WolfgangLanger_Pexels.mp4"  # 472 frames, index at the start


def facecue(*args: str, **kwargs) -> subprocess.Popen:
    """``facecue ARGS`` with the shipped models, as a user's shell starts it: its output to
    a pipe is block-buffered (the suite may run with PYTHONUNBUFFERED set)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.Popen([sys.executable, "-m", "facecue.cli", *args, *model_args()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            **kwargs)


def wait_for(path: Path, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def video_frames(path: Path) -> int:
    """Frames that really decode (not the container's count)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_outputs(out: Path) -> int:
    """A finished `run --out` folder: a playable video, whole JSON lines, a summary that
    counts them, no temporary files. The video's frame count."""
    frames = video_frames(out / "annotated.mp4")
    records = jsonl(out / "faces.jsonl")
    assert frames > 0 and 0 < len({r["frame"] for r in records}) <= frames
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sum(int(r["frames"]) for r in rows) == len(records)
    assert hidden(out) == []
    return frames


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_a_run_like_ctrl_c(shared, tmp_path, sig):
    out = tmp_path / "out"
    proc = facecue("run", str(shared / LONG_CLIP), "--out", str(out), "--no-window")
    wait_for(out / "snapshots" / "frame000000.png")  # frames are going through
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    assert err == f"facecue: stopped by {sig.name}\n"
    assert 0 < check_outputs(out) < 472


def test_a_failed_write_stops_the_run_and_leaves_no_partial_file(shared, tmp_path):
    def limit(size: int):  # what `ulimit -f` does; Python ignores SIGXFSZ: writes get EFBIG
        return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    out = tmp_path / "out"
    proc = facecue("run", str(shared / LONG_CLIP), "--out", str(out), "--no-window",
                   preexec_fn=limit(1_000_000))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    # One clear line: no "Failed to write frame" from OpenCV on every later frame.
    assert err == f"facecue: error: cannot write {out / 'annotated.mp4'}: File too large\n"
    assert not (out / "annotated.mp4").exists() and hidden(out) == []
    # The others are whole, and end where the failed write stopped the run, far from the end.
    records = jsonl(out / "faces.jsonl")
    assert len(records) > 0 and max(r["frame"] for r in records) < 300
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sum(int(r["frames"]) for r in rows) == len(records)

    # A video small enough to stay in the writer's buffer until its end: every frame "went
    # well", the writing at the end does not; read back, the file has no frames.
    out = tmp_path / "short"
    proc = facecue("run", str(shared / "media/videos/grid_bbaf2n.mpg"), "--out", str(out),
                   "--no-window", "--max-frames", "60", preexec_fn=limit(150_000))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err == (f"facecue: error: cannot write {out / 'annotated.mp4'}: the finished file "
                   "reads back with 0 of 60 frames (a full disk?)\n")
    assert not (out / "annotated.mp4").exists() and hidden(out) == []
    assert len(jsonl(out / "faces.jsonl")) == 60

    lines = tmp_path / "lines" / "faces.jsonl"  # JSON Lines that outgrow the limit
    proc = facecue("run", str(shared / LONG_CLIP), "--jsonl", str(lines), "--no-window",
                   preexec_fn=limit(20_000))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err == f"facecue: error: cannot write {lines}: File too large\n"
    assert list(lines.parent.iterdir()) == []


def test_every_output_path_is_checked_before_the_first_frame(shared, tmp_path, capsys):
    clip = str(shared / "media/videos/grid_bbaf2n.mpg")
    folder = tmp_path / "taken"
    folder.mkdir()
    out = tmp_path / "out"
    assert main(["run", clip, "--out", str(out), "--jsonl", str(folder), "--no-window",
                 *model_args()]) == 2
    assert capsys.readouterr().err == f"facecue: error: cannot write {folder}: it is a folder\n"
    assert [p for p in out.rglob("*") if p.is_file()] == []
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    read = []

    def frames():  # real frames, noting each one the run reads
        for image in read_frames(shared / "media/videos/grid_bbaf2n.mpg", limit=5):
            read.append(1)
            yield image

    pipe = make_pipeline()
    for outputs, error in (({"jsonl": folder}, "it is a folder"),
                           ({"out": a_file}, f"{a_file} is a file"),
                           ({"jsonl": a_file / "faces.jsonl"}, f"{a_file} is a file"),
                           ({"out": a_file / "sub"}, "Not a directory")):
        with pytest.raises(OSError, match=re.escape(error)):
            run(frames(), pipeline=pipe, **outputs)
        assert read == []


def test_hostile_images_are_skipped_counted_and_named(shared, tmp_path, capsys):
    photos = shared / "media" / "photos"
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("fr_obama_small.jpg", "pyfeat_single_face.jpg"):
        shutil.copy(photos / name, folder / name)
    # A real PNG whose header declares 60000x60000 (its CRC fixed), cut to 12 KB.
    png = (photos / "skimage_camera.png").read_bytes()
    ihdr = b"IHDR" + struct.pack(">II", 60000, 60000) + png[24:29]
    (folder / "giant.png").write_bytes(
        (png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:])[:12000])
    # A real photo squeezed into a 20000x10 strip.
    cv2.imwrite(str(folder / "strip.png"),
                cv2.resize(cv2.imread(str(photos / "fr_obama_small.jpg")), (20000, 10)))
    giant, strip = folder / "giant.png", folder / "strip.png"

    assert main(["analyze", str(folder), *model_args()]) == 1
    said = capsys.readouterr()
    assert [line.split(":")[0] for line in said.out.splitlines()] == [
        str(folder / "fr_obama_small.jpg"), str(folder / "pyfeat_single_face.jpg")]
    assert all("1 face(s)" in line for line in said.out.splitlines())
    assert f"{giant}: it declares more pixels than OpenCV reads" in said.err
    assert f"image {strip} is 20000x10: a strip" in said.err

    out = tmp_path / "out"
    assert main(["run", str(folder), "--out", str(out), "--no-window", *model_args()]) == 1
    err = capsys.readouterr().err
    assert f"{giant}: it declares more pixels" in err and f"{strip} is 20000x10" in err
    assert "facecue: 2 frames (2 skipped), faces in 2" in err
    # Records from a folder name their image.
    records = jsonl(out / "faces.jsonl")
    assert [r["source"] for r in records] == [str(folder / "fr_obama_small.jpg"),
                                              str(folder / "pyfeat_single_face.jpg")]
    assert list(records[0])[:4] == ["time", "frame", "source", "box"]


def test_a_clip_cut_short_says_where_it_ended_without_decoder_noise(shared, tmp_path):
    data = (shared / LONG_CLIP).read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # the index survives the cut
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 5])
    src = VideoSource(str(cut))
    decoded = sum(1 for _ in src)
    end = decoded + src.skipped  # the frame cut in two does not decode
    assert 0 < decoded < 472 and src.ended_early == f"ended early at frame {end} of 472"

    out = tmp_path / "out"
    proc = facecue("run", str(cut), "--out", str(out), "--no-window")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    lines = err.splitlines()
    assert all(line.startswith("facecue: ") for line in lines), err  # no raw FFmpeg lines
    assert f"facecue: {cut}: ended early at frame {end} of 472 (the file is cut short or " \
           "damaged)" in lines
    assert f"facecue: {decoded} frames ({src.skipped} skipped, ended early at frame {end} of " \
           "472), faces in" in err
    assert check_outputs(out) == decoded


def test_ctrl_c_in_analyze_keeps_the_results_printed_so_far(shared, tmp_path):
    photos = shared / "media" / "photos"
    for photo in sorted(photos.glob("fr_*.jp*g")):
        shutil.copy(photo, tmp_path / photo.name)
    proc = facecue("analyze", str(tmp_path))
    ready, _, _ = select.select([proc.stdout], [], [], 90)
    assert ready, "no result printed while the images were analysed"
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "facecue: interrupted\n"
    done = [first, *rest.splitlines()]
    assert 1 <= len(done) < 11  # stopped before the end, and every result shown is whole
    assert all(re.fullmatch(rf"{tmp_path}/fr_\S+: \d face\(s\).*\n?", line) for line in done)


def speech_file(shared: Path, out: Path) -> Path:
    """Five real LJSpeech sentences one after another, a second of silence apart (45 s of
    speech: more than one Whisper pass)."""
    import wave

    names = ["LJ001-0001", "LJ001-0003", "LJ001-0005", "LJ001-0007", "LJ001-0010"]
    with wave.open(str(out), "wb") as dst:
        for i, name in enumerate(names):
            with wave.open(str(shared / f"media/speech/ljspeech/{name}.wav")) as src:
                if i == 0:
                    dst.setparams(src.getparams())
                dst.writeframes(src.readframes(src.getnframes()))
                dst.writeframes(b"\0" * src.getsampwidth() * src.getframerate())
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_caption_stops_with_one_line_and_keeps_what_it_showed(shared, tmp_path, sig):
    """Stopped after its first Whisper pass, ``caption`` has shown those utterances (each
    is shown as soon as it is captioned), ends with one line and leaves no caption file."""
    pytest.importorskip("faster_whisper")
    out = tmp_path / "long.vtt"
    proc = facecue("caption", str(speech_file(shared, tmp_path / "long.wav")), "--out", str(out))
    shown, end = [], time.monotonic() + 240
    while not shown:
        assert time.monotonic() < end, "no utterance shown"
        line = proc.stderr.readline()
        assert line, f"caption ended early: {proc.communicate()}"
        if re.match(r"facecue: +\d+\.\d\d- +\d+\.\d\d ", line):
            shown.append(line)
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig and rest == ""
    assert err.splitlines()[-1] == ("facecue: interrupted" if sig == signal.SIGINT
                                    else "facecue: stopped by SIGTERM")
    assert "printing" in shown[0].lower()  # the first sentence, LJ001-0001
    assert not out.exists() and not list(tmp_path.glob(".long*"))


def test_sigkill_leaves_earlier_outputs_whole_and_the_next_run_starts_clean(shared, tmp_path):
    clip = str(shared / LONG_CLIP)
    out = tmp_path / "out"
    first = facecue("run", clip, "--out", str(out), "--no-window", "--max-frames", "10")
    assert first.wait(timeout=120) == 0
    done = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    killed = facecue("run", clip, "--out", str(out), "--no-window")
    end = time.monotonic() + 90
    while not hidden(out):  # the second run's video under its temporary name
        assert time.monotonic() < end
        time.sleep(0.05)
    time.sleep(random.uniform(0.2, 2.0))  # a random frame
    killed.kill()  # SIGKILL: no handler runs
    killed.communicate()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name[0] != "."} \
        == done
    assert hidden(out)  # what the killed run left

    again = facecue("run", clip, "--out", str(out), "--no-window", "--max-frames", "5")
    assert again.wait(timeout=120) == 0
    assert check_outputs(out) == 5  # leftovers of the dead run are gone


class LostCamera(FrameSource):
    """A camera's real frames that stops answering after ``n`` of them, as an unplugged USB
    camera read by a driver that raises."""

    name = "camera 0"
    fps = 25.0

    def __init__(self, frames: list, n: int):
        super().__init__()
        self.frames, self.n = frames, n

    def __iter__(self):
        for i, image in enumerate(self.frames[: self.n]):
            yield Frame(i, i / self.fps, image)
        raise SourceError("no such device (unplugged?)")


def test_a_lost_camera_ends_the_run_with_a_message_and_whole_outputs(shared, tmp_path,
                                                                      caplog):
    frames = read_frames(shared / "media/videos/grid_swiz3n.mpg", limit=30)
    out = tmp_path / "out"
    report = run(LostCamera(frames, 20), out, pipeline=make_pipeline())
    assert report.frames == 20
    assert report.ended_early == "failed at frame 20: no such device (unplugged?)"
    assert report.as_dict()["ended_early"] == report.ended_early
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == ["camera 0: failed at frame 20: no such device (unplugged?); the stream "
                    "ends here"]
    assert check_outputs(out) == 20


@pytest.mark.slow
def test_soak_5000_frames_through_every_sink_in_flat_memory(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_soak.py"),
                           "--frames", "5000", "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    soak = json.loads(proc.stdout)
    assert soak["frames"] == 5000 and soak["face_frames"] > 500 and soak["face_ids"] > 20
    assert soak["growth"] < 0.05, soak["rss_mb"]
    assert check_outputs(out) == 5000
    assert len(list(csv.DictReader((out / "summary.csv").open()))) == soak["face_ids"]
    assert len(list((out / "snapshots").glob("*.png"))) >= soak["face_ids"]


def test_a_stop_waits_until_the_frame_is_written(shared, tmp_path):
    """A real SIGTERM and Ctrl-C sent while a frame goes to the outputs take effect when the
    frame is whole: every output then holds the same frames (before, a signal between the
    video writer's write and its count left a video that read back one frame off: exit 2)."""
    from facecue.cli import Stopped, _stop_on_signals
    from facecue.video.sinks import JsonlSink, Sink, SummarySink, VideoSink

    class SignalSelf(Sink):  # a real signal to this process, mid-frame, before the others
        def __init__(self, sig: int):
            self.sig, self.files = sig, ()

        def write(self, image, result) -> None:
            if result.index == 5:
                os.kill(os.getpid(), self.sig)

    frames, pipe = read_frames(shared / LONG_CLIP, 12), make_pipeline()
    for sig, stopped in ((signal.SIGTERM, Stopped), (signal.SIGINT, KeyboardInterrupt)):
        out = tmp_path / sig.name
        sinks = [SignalSelf(sig), VideoSink(out / "annotated.mp4", 25),
                 JsonlSink(out / "faces.jsonl"),
                 SummarySink(out / "summary.csv", pipe.expression.labels)]
        with _stop_on_signals(), pytest.raises(stopped):
            run(frames, pipeline=pipe, sinks=sinks)
        assert check_outputs(out) == 6  # frames 0..5, each whole in every output


def test_a_stop_python_drops_in_a_finaliser_still_ends_the_work():
    """A real Ctrl-C whose KeyboardInterrupt is raised inside a ``__del__`` is printed and
    dropped by Python (seen once: a `caption` given SIGINT ran to the end and exited 0); the
    stop is kept and raised again at the next check."""
    from facecue import interrupts
    from facecue.cli import _stop_on_signals

    class SignalOnCollect:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, inside __del__

    with _stop_on_signals():
        SignalOnCollect()  # collected at once: the KeyboardInterrupt is dropped
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    interrupts.check()  # the command is over: nothing pending
