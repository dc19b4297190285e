"""Streams: tracking on real clips, smoothing, damaged files, dead sources (memory over a
long run: test_faults_run.py's soak)."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
from functools import partial

import cv2
import numpy as np
import pytest
from pipeline_support import make_pipeline, read_frames

import facecue
from facecue import api
from facecue.api import run
from facecue.video.annotate import FrameRate
from facecue.video.smooth import LabelSmoother, OneEuroFilter
from facecue.video.sources import DEMO_CLIP as DEMO
from facecue.video.sources import ArraySource, SourceError, VideoSource, open_source
from facecue.video.track import iou
from facecue.vision.detect import HaarDetector, MediaPipeDetector


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline()


@pytest.fixture(scope="module")
def videos(shared):
    return shared / "media" / "videos"


def results_of(pipe, source):
    return [r for _, r in pipe.stream(source)]


def test_single_face_clip_keeps_one_id_without_detecting_every_frame(pipe, videos):
    faces = pipe.stream(videos / "pyfeat_single_face.mp4")
    results = [r for _, r in faces]
    assert len(results) == 72
    assert sum(bool(r.faces) for r in results) >= 0.95 * len(results)
    assert {f.track_id for r in results for f in r.faces} == {1}
    stats = faces.stats  # what the stream counted matches what it gave
    assert stats.frames == 72 and stats.skipped == 0 and stats.track_ids == {1}
    assert stats.face_frames == sum(bool(r.faces) for r in results)
    assert 0 < stats.detections <= len(results) / 3
    stages = stats.stage_ms()
    waited = {"wait"} if faces.workers == 2 else set()  # the models' thread, for frames
    assert set(stages) == {"decode", "convert", "track", "detect", "crop", "expression",
                           "keypoints", "smooth"} | waited
    assert all(v >= 0 for v in stages.values()) and stages["expression"] > 0


def test_smoothing_state_lives_with_the_stream_and_forgets_ended_faces(pipe):
    # The built-in clip's face leaves the frame and a new one (ID 2) comes back later.
    # One worker: with two, the tracker runs ahead of the frame given.
    faces = pipe.stream(str(DEMO), workers=1)
    held = []
    for _ in faces:
        alive = {tr.id for tr in faces.tracker.tracks}
        assert len(faces.smoother) <= len(alive)
        held.append(len(faces.smoother))
    assert faces.stats.track_ids == {1, 2}
    assert 0 in held[held.index(1):]  # face 1's filters went with its track


def test_streams_share_the_loaded_models_but_not_their_state(videos):
    loads = api._pipeline.cache_info().misses
    clip = videos / "grid_bbaf2n.mpg"
    one, two = facecue.stream(clip), facecue.stream(clip)
    pairs = list(zip(one, two, strict=True))  # interleaved: each stream tracks on its own
    assert len(pairs) == 75
    for a, b in pairs:
        assert [f.track_id for f in a.faces] == [f.track_id for f in b.faces] == [1]
        assert np.array_equal(a.faces[0].keypoints, b.faces[0].keypoints)
        assert np.array_equal(a.faces[0].expression.probs, b.faces[0].expression.probs)
    facecue.analyze(read_frames(clip, limit=1)[0])
    assert api._pipeline.cache_info().misses - loads <= 1  # loaded once at most


def every_third(path):
    """A clip at a third of its frame rate (real frames, real times), to keep tests short."""
    fps = cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS)
    return ArraySource(read_frames(path, step=3), fps / 3)


def test_face_leaves_and_face_arrives(pipe, videos):
    # face_noface: a face for ~2 s, then a cartoon title; noface_face the other way round.
    out = results_of(pipe, every_third(videos / "pyfeat_face_noface.mov"))
    assert all(r.faces for r in out if r.time < 1.5)
    assert not any(r.faces for r in out if r.time > 3.0)
    into = results_of(pipe, every_third(videos / "pyfeat_noface_face.mov"))
    assert not any(r.faces for r in into if r.time < 3.0)
    late = [bool(r.faces) for r in into if r.time > 4.8]
    assert late and sum(late) >= 0.9 * len(late)
    assert not any(r.faces for r in results_of(pipe, every_third(videos / "pyfeat_no_face.mp4")))


def test_ids_follow_a_moving_face_and_a_returning_face_gets_a_new_one(pipe):
    # The built-in clip: a camera zooms and pans over a real portrait, the face leaves the
    # frame for about a second and comes back.
    results = results_of(pipe, str(DEMO))
    ids = [r.faces[0].track_id if r.faces else None for r in results]
    first_gap = ids.index(None, ids.index(1))
    assert set(ids[:first_gap]) == {1} and first_gap >= 30  # zoom and pan: one ID
    returned = [i for i in ids[first_gap:] if i is not None]
    assert returned and set(returned) == {2}  # gone past the grace period: a new face


def test_two_faces_get_two_stable_ids(pipe, shared):
    img = cv2.imread(str(shared / "media/photos/fr_two_people.jpg"))
    frames = [np.roll(img, 3 * k, axis=1) for k in range(20)]  # a slow pan
    results = results_of(pipe, ArraySource(frames))
    per_frame = [sorted(f.track_id for f in r.faces) for r in results]
    assert all(p == [1, 2] for p in per_frame)
    boxes = {f.track_id: f.box for f in results[-1].faces}
    start = {f.track_id: f.box for f in results[0].faces}
    for tid in (1, 2):  # each ID stayed on its face: it moved with the pan
        assert abs(boxes[tid][0] - start[tid][0] - 57) <= 15


def test_a_face_that_jumps_keeps_its_id(pipe, shared):
    # A real photo jumping 160 px (more than a face width) between two frames, as a head
    # turning fast on a 15 fps webcam: flow loses it, a scan finds it, the ID stays.
    img = cv2.imread(str(shared / "media/photos/fr_obama_small.jpg"))
    frames = []
    for x in [100] * 10 + [260] * 10:
        canvas = np.full((360, 640, 3), 90, np.uint8)
        canvas[60:300, x:x + 320] = img
        frames.append(canvas)
    results = results_of(pipe, ArraySource(frames, fps=15))
    ids = [f.track_id for r in results for f in r.faces]
    assert set(ids) == {1} and len(results[-1].faces) == 1


def jitter(points: np.ndarray) -> float:
    """Mean size of the frame-to-frame acceleration: high for noise, ~0 for smooth motion."""
    return float(np.abs(np.diff(points, n=2, axis=0)).mean())


def test_one_euro_reduces_jitter_on_a_real_clip_and_keeps_up(pipe, videos):
    results = results_of(pipe, videos / "pyfeat_single_face.mp4")
    faces = [r.faces[0] for r in results if r.faces]
    raw = np.stack([f.raw_keypoints for f in faces])
    smooth = np.stack([f.keypoints for f in faces])
    assert jitter(smooth) < 0.7 * jitter(raw)
    # Little lag: on average the smoothed points sit where the raw ones are (noise cancels
    # out in the mean, a lag behind the moving head would not).
    assert np.abs((smooth - raw).mean(axis=0)).max() < 0.03 * faces[0].box[2]
    # A steady move of 300 px/s is followed closely once the filter has adapted.
    f = OneEuroFilter()
    out = [f(np.array([300.0 * t, 0.0]), t) for t in np.arange(0, 2, 1 / 30)]
    assert abs(out[-1][0] - 300.0 * (2 - 1 / 30)) < 15


def test_hysteresis_stops_flicker_but_follows_a_real_change():
    rng = np.random.default_rng(0)
    t = np.arange(0, 6, 1 / 30)
    # Two near-tied classes with per-frame noise for 3 s, then class 2 clearly wins.
    base = np.where(t[:, None] < 3, [0.42, 0.38, 0.2], [0.15, 0.15, 0.7])
    probs = np.clip(base + rng.normal(0, 0.06, base.shape), 0.01, None)
    probs /= probs.sum(1, keepdims=True)
    smoother = LabelSmoother()
    shown = [smoother(p, tt)[1] for p, tt in zip(probs, t, strict=True)]
    raw = probs.argmax(1)
    steady = t < 3
    changes = lambda x: int(np.sum(np.diff(np.asarray(x)[steady]) != 0))  # noqa: E731
    assert changes(raw) >= 10 and changes(shown) * 5 <= changes(raw)
    follow = t[(t >= 3) & (np.array(shown) == 2)][0]
    assert follow - 3 <= 0.5


def test_truncated_and_damaged_videos(pipe, videos, tmp_path):
    data = (videos / "pyfeat_WolfgangLanger_Pexels.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 5])
    src = open_source(truncated)
    results = [r for _, r in pipe.stream(src)]
    assert 0 < len(results) < 472  # ends cleanly where the data ends
    damaged = tmp_path / "damaged.mp4"
    broken = bytearray(data[: len(data) // 4])
    broken[len(broken) // 2: len(broken) // 2 + 20000] = bytes(20000)
    damaged.write_bytes(bytes(broken))
    src = open_source(damaged)
    results = [r for _, r in pipe.stream(src)]
    # Frames after the damage still come through (FFmpeg conceals most broken frames; any it
    # cannot decode are counted in ``skipped``) and indices stay in order.
    assert len(results) + src.skipped > 60
    assert all(b.index > a.index for a, b in zip(results, results[1:], strict=False))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(data[5000:60000])
    with pytest.raises(SourceError):
        open_source(garbage)


def test_dead_sources_fail_clearly(tmp_path):
    with pytest.raises(SourceError, match="no camera"):
        VideoSource(9)
    with pytest.raises(SourceError, match="cannot open stream"):
        VideoSource("rtsp://127.0.0.1:9/none")
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "missing.mp4")
    with pytest.raises(SourceError, match="no images"):
        open_source(tmp_path)


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


def test_http_url_to_a_clip_plays_once_and_ends(pipe, videos, tmp_path):
    handler = partial(_CountingHandler, directory=str(videos))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # MPEG-PS: python's http.server has no range requests, which MP4 needs for seeking.
        url = f"http://127.0.0.1:{server.server_port}/grid_bbaf2n.mpg"
        report = run(url, tmp_path / "out", pipeline=pipe)
    finally:
        server.shutdown()
        server.server_close()
    # The run opened the URL once, and its report says what the stream did and wrote.
    assert _CountingHandler.requests == ["/grid_bbaf2n.mpg"]
    assert (report.frames, report.skipped, report.face_frames, report.track_ids) == (
        75, 0, 75, (1,))
    assert report.files == tuple(tmp_path / "out" / n for n in (
        "annotated.mp4", "summary.csv", "snapshots", "faces.jsonl"))
    assert report.fps > 0 and report.stage_ms["expression"] > 0
    assert json.loads(json.dumps(report.as_dict()))["files"][-1].endswith("faces.jsonl")


class _LiveHandler(http.server.BaseHTTPRequestHandler):
    """Serves a real clip as a live stream: no length, so the reader cannot know its end."""

    clip = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mpeg")
        self.end_headers()
        self.wfile.write(self.clip)

    def log_message(self, *args):
        pass


def test_live_stream_reconnects_then_stops_when_the_server_is_gone(videos, caplog):
    _LiveHandler.clip = (videos / "grid_bbaf2n.mpg").read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LiveHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/live.mpg"
    src = VideoSource(url, reconnect=1)
    assert src.live
    assert len(list(src)) == 150  # the stream ended once, was reopened, and played again
    src = VideoSource(url, reconnect=2)
    frames = 0
    for _ in src:
        frames += 1
        if frames == 10:
            server.shutdown()
            server.server_close()
    assert 10 <= frames <= 75  # what was sent; then two failed reconnects, a clean stop
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"{url}: no frames; reconnecting (2/2)" in said
    assert f"{url}: source stopped sending frames (disconnected?); stopping" in said


def test_folder_of_images_with_a_broken_one(pipe, shared, tmp_path):
    photos = shared / "media" / "photos"
    shutil.copy(photos / "fr_obama_small.jpg", tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"not an image")
    shutil.copy(photos / "skimage_coffee.png", tmp_path / "c.png")
    src = open_source(tmp_path)
    results = [r for _, r in pipe.stream(src)]
    assert [len(r.faces) for r in results] == [1, 0]
    assert src.skipped == 1


def test_mediapipe_detector_or_how_to_install_it(shared):
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match=r"facecue\[mediapipe\]"):
            MediaPipeDetector()
        return
    gray = cv2.imread(str(shared / "media/photos/fr_two_people.jpg"), cv2.IMREAD_GRAYSCALE)
    haar = sorted(HaarDetector()(gray), key=lambda d: d.box[0])
    mp = sorted(MediaPipeDetector()(gray), key=lambda d: d.box[0])
    assert len(mp) == len(haar) == 2
    for a, b in zip(haar, mp, strict=True):  # boxes moved to the Haar framing
        assert iou(np.array(a.box, float), np.array(b.box, float)) > 0.7


def test_overlay_frame_rate_is_steady_on_a_real_clip(pipe):
    """The overlay's counter: frames over the last second. Single frames of the built-in clip
    take from under a millisecond (no face in view) to tens (a detection), so one over each
    frame's time jumped between tens and thousands of FPS."""
    ends = []
    for _ in pipe.stream(str(DEMO)):
        ends.append(time.perf_counter())
    # The run's own frame times, paced to 3 s whatever this machine's speed.
    t = (np.array(ends) - ends[0]) * 3.0 / (ends[-1] - ends[0])
    single = 1 / np.diff(t)
    assert np.percentile(single, 95) > 10 * np.percentile(single, 5)
    rate, shown = FrameRate(), []
    for now in t:
        rate.tick(now)
        shown.append(rate.fps)
    assert shown[0] is None
    settled = np.array(shown[int(np.searchsorted(t, 1.0)):])  # a second of history
    assert settled.max() < 3 * settled.min()
    assert np.abs(np.diff(settled) / settled[:-1]).max() < 0.25  # no jumps frame to frame
    steady = FrameRate()
    for now in np.arange(0, 3, 1 / 25):
        steady.tick(now)
    assert steady.fps == pytest.approx(25.0)
