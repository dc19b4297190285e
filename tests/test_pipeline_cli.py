"""The command line end to end, and the files it writes (JSON Lines, CSV, video, snapshots)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import pytest
from pipeline_support import make_pipeline, model_args, read_frames

from facecue.api import run
from facecue.cli import main
from facecue.video.sinks import JsonlSink, VideoSink, WindowSink, has_display
from facecue.video.sources import ArraySource, SourceError, VideoSource, open_source


def test_analyze_json(shared, capsys):
    photos = shared / "media" / "photos"
    args = [str(photos / "fr_two_people.jpg"), str(photos / "skimage_coffee.png")]
    assert main(["analyze", *args, "--json", *model_args()]) == 0
    report = json.loads(capsys.readouterr().out)
    two, none = report[args[0]], report[args[1]]
    assert len(two) == 2 and none == []
    for face in two:
        assert len(face["box"]) == 4 and len(face["keypoints"]) == 15
        assert face["label"] in face["probs"]
        assert sum(face["probs"].values()) == pytest.approx(1.0, abs=0.01)


def test_analyze_reports_bad_files_and_goes_on(shared, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes((shared / "media/photos/fr_obama.jpg").read_bytes()[2000:9000])
    good = shared / "media/photos/fr_obama_small.jpg"
    assert main(["analyze", str(bad), str(good), *model_args()]) == 1
    out = capsys.readouterr()
    assert "cannot decode" in out.err and "1 face(s)" in out.out


def test_run_writes_jsonl_csv_video_and_snapshots(shared, tmp_path, capsys):
    clip = shared / "media/videos/pyfeat_single_face.mp4"
    out = tmp_path / "out"
    assert main(["run", str(clip), "--out", str(out), "--no-window", "--max-frames", "40",
                 "--snapshot-every", "1", *model_args()]) == 0
    records = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    assert len(records) >= 38 and [r["frame"] for r in records] == sorted(
        r["frame"] for r in records)
    for key in ("time", "frame", "id", "box", "keypoints", "probs", "label"):
        assert key in records[0]
    assert {r["id"] for r in records} == {1}
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 1 and rows[0]["track_id"] == "1" and int(rows[0]["frames"]) >= 38
    shares = [float(v) for k, v in rows[0].items() if k.startswith("share_")]
    assert sum(shares) == pytest.approx(1.0, abs=0.01)
    assert rows[0]["dominant"] == Counter(r["label"] for r in records).most_common(1)[0][0]
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40
    # One when the face appears (frame 0) and one a second later (40 frames at 30 fps).
    assert sorted(p.name for p in (out / "snapshots").glob("*.png")) == [
        "frame000000.png", "frame000030.png"]
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind
    assert "40 frames" in capsys.readouterr().err


def test_run_without_a_display_says_so_and_streams_jsonl(shared, capsys):
    if has_display()[0]:
        pytest.skip("a display is available here")
    clip = shared / "media/videos/grid_bbaf2n.mpg"
    assert main(["run", str(clip), "--max-frames", "5", *model_args()]) == 0
    out = capsys.readouterr()
    assert "no window" in out.err
    assert len([json.loads(line) for line in out.out.splitlines()]) == 5


def test_run_with_missing_camera_or_file_fails_cleanly(tmp_path, capsys):
    assert main(["run", "7", "--no-window", *model_args()]) == 2
    assert "no camera at index 7" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "nope.mp4"), "--no-window", *model_args()]) == 2
    assert "not found" in capsys.readouterr().err


def test_demo_runs_offline_on_the_builtin_clip(tmp_path):
    try:  # with no webcam the demo falls back to the built-in clip by itself
        VideoSource(0, reconnect=0).close()
        extra = ["--builtin"]
    except SourceError:
        extra = []
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "facecue.cli", "demo", "--out", str(out),
                           *extra, *model_args()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert extra or "no webcam found; running on the built-in clip" in proc.stderr
    assert {p.name for p in out.iterdir()} >= {"annotated.mp4", "faces.jsonl", "summary.csv"}
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) >= 1


def test_a_window_that_fails_does_not_stop_the_run(shared, tmp_path, capsys):
    if has_display()[0]:
        pytest.skip("a working display is available here")
    # This OpenCV has no GUI, so every imshow fails, as when a display goes away mid-run.
    sinks = [WindowSink(), JsonlSink(tmp_path / "f.jsonl")]
    stats = run(shared / "media/videos/grid_bbaf2n.mpg", sinks, make_pipeline(), max_frames=10)
    assert stats.frames == 10
    assert len((tmp_path / "f.jsonl").read_text().splitlines()) == 10
    assert capsys.readouterr().err.count("window failed") == 1


def test_avi_written_by_the_video_sink_reads_back_as_a_source(pipe_frames, tmp_path):
    avi = tmp_path / "clip.avi"
    pipe, frames = pipe_frames
    run(ArraySource(frames, fps=25), [VideoSink(avi, 25)], pipe)
    src = open_source(avi)
    decoded = [frame.image for frame in src]
    assert len(decoded) == len(frames) and src.fps == 25
    for got, original in zip(decoded, frames, strict=True):  # the source frames + the overlay
        diff = np.abs(got.astype(int) - original.astype(int))
        assert got.shape == original.shape and np.median(diff) <= 2 and diff.mean() < 8
    assert len([r for _, r in pipe.stream(open_source(avi))]) == len(frames)


@pytest.fixture
def pipe_frames(shared):
    return make_pipeline(), read_frames(shared / "media/videos/grid_swiz3n.mpg", limit=20)
