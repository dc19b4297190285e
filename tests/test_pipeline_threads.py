"""Threads in the pipeline: one model run per frame for all its faces, and the reader thread
(``workers=2``) giving exactly what one thread gives, stopping when the stream stops and
passing its errors and counts on."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from pipeline_support import make_pipeline, read_frames

from facecue.video.pipeline import AHEAD, Pipeline, check_workers, default_workers, usable_cores
from facecue.video.sources import (
    ArraySource,
    Frame,
    FrameSource,
    SourceError,
    VideoSource,
    pan,
)

STAGE_CLIP = "media/videos/fr_short_hamilton_clip.mp4"  # small faces, cuts to the audience
FIVE_FACES = "media/photos/pyfeat_multi_face.jpg"  # five people; Haar misses the sunglasses


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline()


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("facecue reader")]


class Counting:
    """An onnxruntime session that records the batch size and thread of every run."""

    def __init__(self, session):
        self.session, self.runs = session, []

    def run(self, outputs, feeds):
        (x,) = feeds.values()
        self.runs.append((len(x), threading.current_thread()))
        return self.session.run(outputs, feeds)

    def __getattr__(self, name):
        return getattr(self.session, name)


@pytest.fixture
def counted(pipe):
    expression, keypoints = Counting(pipe.expression.session), Counting(pipe.keypoints.session)
    pipe.expression.session, pipe.keypoints.session = expression, keypoints
    yield expression, keypoints
    pipe.expression.session, pipe.keypoints.session = expression.session, keypoints.session


def check_one_batch_per_frame(pipe, counted, source, workers: int) -> list[int]:
    """Iterate a stream, checking each frame's faces went through each model as one batch
    run in the iterating thread; the number of faces of each frame."""
    faces = []
    for _, result in pipe.stream(source, workers=workers):
        for model in counted:
            runs, model.runs = model.runs, []
            n = len(result.faces)
            assert [size for size, _ in runs] == ([n] if n else []), result.index
            assert all(t is threading.current_thread() for _, t in runs)
        faces.append(len(result.faces))
    return faces


@pytest.mark.parametrize("workers", [1, 2])
def test_one_frame_s_faces_go_through_each_model_as_one_batch(pipe, counted, shared, workers):
    photo = cv2.imread(str(shared / FIVE_FACES))
    faces = len(pipe.analyze(photo))
    assert faces >= 4
    assert [[size for size, _ in model.runs] for model in counted] == [[faces], [faces]]
    for model in counted:
        model.runs = []
    per_frame = check_one_batch_per_frame(pipe, counted, ArraySource(pan(photo, 30)), workers)
    assert min(per_frame) >= 4
    stage = read_frames(shared / STAGE_CLIP)  # BlazeFace sees two faces at once after frame 150
    per_frame = check_one_batch_per_frame(pipe, counted, ArraySource(stage, 29.97), workers)
    assert max(per_frame) >= 2 and 0 in per_frame  # several faces at once, and none


def same_results(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert (x.index, x.time, x.width, x.height, x.source) == \
               (y.index, y.time, y.width, y.height, y.source)
        assert len(x.faces) == len(y.faces)
        for f, g in zip(x.faces, y.faces, strict=True):
            assert (f.box, f.track_id, f.detection_score) == (g.box, g.track_id,
                                                               g.detection_score)
            assert f.expression.label == g.expression.label
            assert f.raw_expression.label == g.raw_expression.label
            for u, v in ((f.keypoints, g.keypoints), (f.raw_keypoints, g.raw_keypoints),
                         (f.expression.probs, g.expression.probs),
                         (f.raw_expression.probs, g.raw_expression.probs)):
                assert np.array_equal(u, v)


def run_stream(pipe, source, workers: int):
    stream = pipe.stream(source, workers=workers)
    results = [r for _, r in stream]
    assert not reader_threads()
    return results, stream.stats


@pytest.mark.parametrize("clip", [STAGE_CLIP, "media/videos/pyfeat_single_face.mp4"])
def test_two_workers_give_what_one_gives(pipe, shared, clip):
    one, one_stats = run_stream(pipe, str(shared / clip), 1)
    two, two_stats = run_stream(pipe, str(shared / clip), 2)
    same_results(one, two)
    assert sum(bool(r.faces) for r in one) > len(one) / 2
    for name in ("frames", "skipped", "face_frames", "track_ids", "detections", "ended_early"):
        assert getattr(one_stats, name) == getattr(two_stats, name), name
    assert set(two_stats.stage_ms()) == set(one_stats.stage_ms()) | {"wait"}


def test_two_workers_on_stills_and_a_photo_sequence(pipe, shared, tmp_path):
    photos = shared / "media" / "photos"
    for name in ("pyfeat_multi_face.jpg", "fr_obama_and_biden.jpg", "skimage_coffee.png"):
        (tmp_path / name).write_bytes((photos / name).read_bytes())
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    one, one_stats = run_stream(pipe, tmp_path, 1)
    two, two_stats = run_stream(pipe, tmp_path, 2)
    same_results(one, two)
    assert [r.source.name for r in two] == ["fr_obama_and_biden.jpg", "pyfeat_multi_face.jpg",
                                           "skimage_coffee.png"]
    assert one_stats.skipped == two_stats.skipped == 1  # the broken file: skipped, counted
    frames = pan(cv2.imread(str(shared / FIVE_FACES)), 40)
    same_results(run_stream(pipe, ArraySource(frames), 1)[0],
                 run_stream(pipe, ArraySource(frames), 2)[0])


def test_a_clip_cut_short_is_counted_the_same_with_two_workers(pipe, shared, tmp_path):
    data = (shared / "media/videos/pyfeat_WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 8])
    one, one_stats = run_stream(pipe, str(cut), 1)
    two, two_stats = run_stream(pipe, str(cut), 2)
    same_results(one, two)
    assert two_stats.skipped >= 1  # the frame cut in two does not decode: skipped, counted
    assert (one_stats.skipped, one_stats.ended_early) == (two_stats.skipped,
                                                          two_stats.ended_early)
    assert two_stats.ended_early.startswith("ended early at frame")


class Failing(FrameSource):
    """Real frames, then an error at frame ``at``; corrupt frames skipped at ``bad``."""

    def __init__(self, frames, at: int, error: BaseException, bad=()):
        super().__init__()
        self.frames, self.at, self.error, self.bad = frames, at, error, set(bad)
        self.closed = False

    def __iter__(self):
        for i, img in enumerate(self.frames):
            if i == self.at:
                raise self.error
            if i in self.bad:
                self.skipped += 1
                continue
            yield Frame(i, i / 25, img)

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def frames(shared):
    return read_frames(shared / "media/videos/pyfeat_single_face.mp4", limit=20)


def test_an_error_in_the_reader_thread_is_raised_in_the_caller(pipe, frames):
    source = Failing(frames, 12, ValueError("frame decoder exploded"), bad=[3])
    stream = pipe.stream(source, workers=2)
    got = []
    with pytest.raises(ValueError, match="frame decoder exploded"):
        for _, result in stream:
            got.append(result.index)
    assert got == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]  # every frame before it, in order
    assert stream.stats.skipped == 1 and source.closed and not reader_threads()

    class Broken:  # a detector that fails: the tracker runs it in the reader thread
        def __call__(self, gray):
            raise RuntimeError("detector broke")

    broken = Pipeline(pipe.expression, pipe.keypoints, Broken(), workers=2)
    with pytest.raises(RuntimeError, match="detector broke"):
        list(broken.stream(ArraySource(frames)))
    assert not reader_threads()


def test_a_source_lost_mid_way_ends_the_stream_the_same_with_two_workers(pipe, frames):
    for workers in (1, 2):
        source = Failing(frames, 9, SourceError("camera unplugged"), bad=[2, 5])
        stream = pipe.stream(source, workers=workers)
        assert [r.index for _, r in stream] == [0, 1, 3, 4, 6, 7, 8]
        assert stream.stats.skipped == 2 and stream.stats.frames == 7
        assert stream.stats.ended_early == "failed at frame 9: camera unplugged"
        assert source.closed and not reader_threads()


def test_the_reader_thread_stops_when_the_stream_does(pipe, shared):
    clip = str(shared / "media/videos/pyfeat_WolfgangLanger_Pexels.mp4")
    stream = pipe.stream(clip, workers=2)
    assert not reader_threads()  # started by the iteration, not before
    for _, result in stream:  # an early break: the loop drops the generator
        if result.index == 2:
            break
    assert not reader_threads() and not stream.source.cap.isOpened()

    stream = pipe.stream(clip, workers=2)
    frames = iter(stream)
    next(frames)
    (reader,) = reader_threads()
    reader.join(0.5)  # the queue fills: the thread waits for room, alive
    assert reader.is_alive()
    stream.close()  # closed while the iteration is held: stops at once, joined
    assert not reader.is_alive() and not stream.source.cap.isOpened()
    assert next(frames, None) is None  # the stream simply ends
    stream.close()  # twice is fine

    stream = pipe.stream(clip, workers=2)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C while a frame is handled
        for _, result in stream:
            if result.index == 5:
                raise KeyboardInterrupt
    assert not reader_threads() and stream.stats.frames == 6


def test_interleaved_streams_of_one_pipeline_each_with_a_reader(pipe, shared):
    # Both readers use the pipeline's one detector: it is run by one thread at a time.
    frames = read_frames(shared / STAGE_CLIP, limit=90)
    alone = [r for _, r in pipe.stream(ArraySource(frames), workers=1)]
    a, b = pipe.stream(ArraySource(frames), workers=2), pipe.stream(ArraySource(frames),
                                                                    workers=2)
    pairs = list(zip(a, b, strict=True))
    same_results(alone, [x for (_, x), _ in pairs])
    same_results(alone, [y for _, (_, y) in pairs])
    assert not reader_threads()


def test_a_lost_live_source_stops_reconnecting_when_the_stream_is_closed(monkeypatch):
    # A camera that stops sending frames: the reader thread is inside the reconnect wait.
    class DeadCapture:
        def __init__(self, *args):
            pass

        def isOpened(self):
            return True

        def get(self, prop):
            return 0.0

        def grab(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", DeadCapture)
    source = VideoSource(0, reconnect=100)
    stream = make_pipeline(workers=2).stream(source)
    frames = iter(stream)
    waiter = threading.Thread(target=next, args=(frames, None), daemon=True)
    waiter.start()
    waiter.join(1.0)
    assert waiter.is_alive() and reader_threads()  # reconnecting, no frame yet
    stream.close()  # from another thread than the one waiting for a frame
    assert not reader_threads()
    waiter.join(2.0)
    assert not waiter.is_alive()


def test_workers_setting():
    assert default_workers() == (2 if usable_cores() >= 2 else 1)
    assert check_workers(None) == default_workers() and check_workers(1) == 1
    for bad in (0, 3, -1, True, 1.5):
        with pytest.raises(ValueError, match="workers must be 1"):
            check_workers(bad)
    assert AHEAD >= 1
