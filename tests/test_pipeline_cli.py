"""The command line end to end, and the files it writes (JSON Lines, CSV, video, snapshots)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import pytest
from pipeline_support import make_pipeline, model_args, read_frames

from facecue.api import run
from facecue.cli import main
from facecue.labels import KEYPOINT_NAMES
from facecue.video.sinks import VideoSink, has_display
from facecue.video.sources import ArraySource, SourceError, VideoSource, open_source

FACE_FIELDS = ["box", "detection_score", "emotion", "emotion_probs", "keypoints"]


def check_face_record(face: dict) -> None:
    """A face as Face.as_dict documents it: named fields, named keypoints, no nulls."""
    assert list(face) == FACE_FIELDS or list(face) == ["track_id", *FACE_FIELDS]
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
    assert 0.5 <= face["detection_score"] <= 1  # BlazeFace's probability of a face
    assert list(face["keypoints"]) == list(KEYPOINT_NAMES)
    assert all(len(xy) == 2 for xy in face["keypoints"].values())
    assert face["emotion"] in face["emotion_probs"]
    assert sum(face["emotion_probs"].values()) == pytest.approx(1.0, abs=0.01)
    x, y, w, h = face["box"]  # the eyes lie inside the face box
    for eye in ("left_eye_center", "right_eye_center"):
        ex, ey = face["keypoints"][eye]
        assert x < ex < x + w and y < ey < y + h


def test_analyze_json(shared, capsys):
    photos = shared / "media" / "photos"
    args = [str(photos / "fr_two_people.jpg"), str(photos / "skimage_coffee.png")]
    assert main(["analyze", *args, "--json", *model_args()]) == 0
    lines = capsys.readouterr().out.splitlines()
    report = {r["image"]: r["faces"] for r in map(json.loads, lines)}
    assert len(lines) == 2 and list(report) == args  # one compact line per image, in order
    two, none = report[args[0]], report[args[1]]
    assert len(two) == 2 and none == []
    for face in two:
        assert "track_id" not in face  # stills are not tracked: no ID, and no null
        check_face_record(face)


def test_analyze_a_folder(shared, tmp_path, capsys):
    photos = shared / "media" / "photos"
    for name in ("fr_two_people.jpg", "fr_obama_small.jpg", "skimage_coffee.png"):
        shutil.copy(photos / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["analyze", str(tmp_path), *model_args()]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        str(tmp_path / n) for n in ("fr_obama_small.jpg", "fr_two_people.jpg",
                                    "skimage_coffee.png")]
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["1", "2", "0"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["analyze", str(empty), *model_args()]) == 2
    assert "no images" in capsys.readouterr().err


def test_analyze_reports_bad_files_and_goes_on(shared, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes((shared / "media/photos/fr_obama.jpg").read_bytes()[2000:9000])
    good = shared / "media/photos/fr_obama_small.jpg"
    assert main(["analyze", str(bad), str(good), *model_args()]) == 1
    out = capsys.readouterr()
    assert "cannot decode" in out.err and "1 face(s)" in out.out
    assert main(["analyze", str(bad), str(good), "--json", *model_args()]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "cannot decode" in records[0]["error"] and len(records[1]["faces"]) == 1


def test_run_writes_jsonl_csv_video_and_snapshots(shared, tmp_path, capsys):
    clip = shared / "media/videos/pyfeat_single_face.mp4"
    out = tmp_path / "out"
    assert main(["run", str(clip), "--out", str(out), "--no-window", "--max-frames", "40",
                 "--snapshot-every", "1", *model_args()]) == 0
    records = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    assert len(records) >= 38 and [r["frame"] for r in records] == sorted(
        r["frame"] for r in records)
    for r in records:  # time and frame, then the same face fields as `analyze --json`
        assert list(r)[:3] == ["time", "frame", "track_id"]
        check_face_record({k: v for k, v in r.items() if k not in ("time", "frame")})
    assert {r["track_id"] for r in records} == {1}
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 1 and rows[0]["track_id"] == "1" and int(rows[0]["frames"]) >= 38
    shares = [float(v) for k, v in rows[0].items() if k.startswith("share_")]
    assert sum(shares) == pytest.approx(1.0, abs=0.01)
    assert rows[0]["dominant"] == Counter(r["emotion"] for r in records).most_common(1)[0][0]
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40
    # One when the face appears (frame 0) and one a second later (40 frames at 30 fps).
    assert sorted(p.name for p in (out / "snapshots").glob("*.png")) == [
        "frame000000.png", "frame000030.png"]
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind
    err = capsys.readouterr().err
    assert "40 frames" in err
    for name in ("annotated.mp4", "summary.csv", "faces.jsonl"):
        assert f"facecue: wrote {out / name}\n" in err
    assert f"facecue: wrote {out / 'snapshots'}/ (2 files)" in err


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
    assert extra or "facecue: no webcam found; running on the built-in clip" in proc.stderr
    written = {p.name for p in out.iterdir()}
    assert written == {"annotated.mp4", "faces.jsonl", "summary.csv", "snapshots"}
    for name in written:  # every output is named, the snapshots folder too
        assert f"facecue: wrote {out / name}" in proc.stderr
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) >= 1


def test_a_window_that_fails_does_not_stop_the_run(shared, tmp_path, caplog):
    if has_display()[0]:
        pytest.skip("a working display is available here")
    # This OpenCV has no GUI, so every imshow fails, as when a display goes away mid-run.
    report = run(shared / "media/videos/grid_bbaf2n.mpg", window=True,
                 jsonl=tmp_path / "f.jsonl", pipeline=make_pipeline(), max_frames=10)
    assert report.frames == 10 and report.files == (tmp_path / "f.jsonl",)
    assert len((tmp_path / "f.jsonl").read_text().splitlines()) == 10
    failed = [r for r in caplog.records if r.getMessage().startswith("window failed (")]
    assert len(failed) == 1 and failed[0].levelname == "WARNING"
    assert failed[0].getMessage().endswith("; continuing without it")


def test_outputs_follow_the_umask(shared, tmp_path):
    clip = shared / "media/videos/grid_bbaf2n.mpg"
    old = os.umask(0o027)
    try:
        run(clip, tmp_path / "out", pipeline=make_pipeline(), max_frames=3)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(files) == 4  # video, JSON Lines, CSV and one snapshot
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o640)}


def test_avi_written_by_the_video_sink_reads_back_as_a_source(pipe_frames, tmp_path):
    avi = tmp_path / "clip.avi"
    pipe, frames = pipe_frames
    run(ArraySource(frames, fps=25), sinks=[VideoSink(avi, 25)], pipeline=pipe)
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
