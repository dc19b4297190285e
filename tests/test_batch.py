"""``facecue batch``: a library of real clips (cut to their first frames), a corrupt file and a
file cut short, on the local process pool and on real Ray (a local instance started here, and
a head node started with ``ray start``): the same outputs row for row, exactly once, even when
a worker is killed mid-batch or the batch is stopped and run again."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import facecue
from facecue.batch import Settings, find_videos, run_batch
from facecue.batch.runner import Progress
from facecue.batch.table import columns
from facecue.batch.video import PARTIAL, Job
from facecue.labels import class_names

MAX_FRAMES = 40  # per video: keeps the batches to seconds
CLIPS = ["grid_bbaf2n.mpg", "pyfeat_single_face.mp4", "pyfeat_no_face.mp4",
         "pyfeat_face_noface.mov"]
SETTINGS = Settings(max_frames=MAX_FRAMES)
VOLATILE = ["seconds"]  # the only library column that may differ between two runs
FACECUE = [sys.executable, "-m", "facecue.cli"]


@pytest.fixture(scope="module")
def library(shared: Path, tmp_path_factory) -> Path:
    """Four real clips (one without faces), a file of random bytes named .mp4 and a real
    video cut to its first 30 kB (its index is at the end: unreadable)."""
    lib = tmp_path_factory.mktemp("library")
    for name in CLIPS:
        (lib / name).symlink_to(shared / "media" / "videos" / name)
    (lib / "sub").mkdir()
    (lib / "sub" / "corrupt.mp4").write_bytes(os.urandom(5000))
    clip = (shared / "media" / "videos" / "pyfeat_single_face.mp4").read_bytes()
    (lib / "sub" / "cut.mp4").write_bytes(clip[:30000])
    return lib


@pytest.fixture(scope="module")
def reference(library: Path, tmp_path_factory) -> Path:
    """An undisturbed batch on the local pool (two workers)."""
    out = tmp_path_factory.mktemp("reference")
    report = run_batch(find_videos(library), out, SETTINGS, workers=2, progress=False)
    assert (report.videos, report.processed, report.skipped) == (6, 6, 0)
    return out


def outputs(out: Path) -> dict[str, tuple]:
    """Every video's faces.parquet and library row (without the volatile columns)."""
    lib = pd.read_parquet(out / "library.parquet")
    rows = {r["name"]: r for r in lib.drop(columns=VOLATILE).to_dict("records")}
    found = {}
    for name, row in rows.items():
        faces = out / "videos" / name / "faces.parquet"
        found[name] = (json.dumps(row, default=str, sort_keys=True),
                       pd.read_parquet(faces) if faces.exists() else None)
    return found


def assert_same(out: Path, reference: Path) -> None:
    """Row for row the reference's outputs, each video's folder once, nothing partial."""
    got, want = outputs(out), outputs(reference)
    assert sorted(got) == sorted(want)
    for name, (row, faces) in want.items():
        assert got[name][0] == row, name
        if faces is None:
            assert got[name][1] is None, name
        else:
            pd.testing.assert_frame_equal(got[name][1], faces, check_exact=True)
    folders = sorted(p.name for p in (out / "videos").iterdir())
    assert folders == sorted(want), "a partial folder or a video twice"
    for name in want:  # the other files byte for byte (video.json: the row, above)
        assert files(out / "videos" / name) == files(reference / "videos" / name), name


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "video.json"}


def test_library_rows_and_files(reference: Path, library: Path):
    lib = pd.read_parquet(reference / "library.parquet").set_index("name")
    by_file = {Path(v).name: n for n, v in lib["video"].items()}
    corrupt, cut = lib.loc[by_file["corrupt.mp4"]], lib.loc[by_file["cut.mp4"]]
    for bad in (corrupt, cut):
        assert bad["status"] == "failed" and "cannot open video" in bad["error"]
    noface = lib.loc[by_file["pyfeat_no_face.mp4"]]
    assert (noface["status"], noface["frames"], noface["faces"], noface["tracks"]) == (
        "done", MAX_FRAMES, 0, 0)
    assert list(noface["dominant"]) == []
    face = lib.loc[by_file["pyfeat_single_face.mp4"]]
    assert face["status"] == "done" and face["frames"] == MAX_FRAMES and face["faces"] > 30
    assert [d["emotion"] in class_names("fer7") for d in face["dominant"]] == [True]
    assert face["facecue_version"] == facecue.__version__
    assert len(face["expression_sha256"]) == 64 and len(face["keypoints_sha256"]) == 64
    folder = reference / "videos" / face.name
    assert sorted(p.name for p in folder.iterdir()) == [
        "faces.parquet", "summary.csv", "timeline.png", "video.json"]
    assert (folder / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    faces = pd.read_parquet(folder / "faces.parquet")
    assert list(faces.columns) == columns(class_names("fer7"))
    assert len(faces) == face["faces"]
    probs = faces[[f"prob_{k}" for k in class_names("fer7")]].sum(axis=1)
    assert ((probs - 1).abs() < 1e-4).all()


def test_to_dataframe_matches_faces_parquet(reference: Path, library: Path, shared: Path):
    """facecue.to_dataframe of stream() is faces.parquet, column for column and value for
    value; of analyze() the same columns; run --parquet writes the same table."""
    clip = shared / "media" / "videos" / "pyfeat_single_face.mp4"
    frames = []
    for result in facecue.stream(str(clip)):
        frames.append(result)
        if len(frames) == MAX_FRAMES:
            break
    table = facecue.to_dataframe(frames)
    stored = pd.read_parquet(reference / "videos" / Job.of(library / clip.name).name
                             / "faces.parquet")
    assert list(table.columns) == list(stored.columns)
    pd.testing.assert_frame_equal(table, stored, check_exact=True)
    still = facecue.to_dataframe(facecue.analyze(str(shared / "media" / "photos" /
                                                     "fr_two_people.jpg")))
    assert list(still.columns) == list(stored.columns) and len(still) == 2
    assert still["track_id"].isna().all()
    empty = facecue.to_dataframe([])  # no face: the default label set's columns, no row
    assert list(empty.columns) == list(stored.columns) and len(empty) == 0
    assert [c for c in facecue.to_dataframe([], labels="fer5").columns
            if c.startswith("prob_")] == [f"prob_{k}" for k in class_names("fer5")]


def test_run_parquet(reference: Path, library: Path, shared: Path, tmp_path: Path):
    clip = shared / "media" / "videos" / "pyfeat_single_face.mp4"
    out = tmp_path / "faces.parquet"
    done = subprocess.run([*FACECUE, "run", str(clip), "--parquet", str(out), "--no-window",
                           "--max-frames", str(MAX_FRAMES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # --parquet alone sends no JSON Lines to standard output
    stored = reference / "videos" / Job.of(library / clip.name).name / "faces.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(stored),
                                  check_exact=True)


def test_captions_are_the_caption_commands(shared: Path, tmp_path: Path):
    """--captions: vtt, srt and json per video, what ``facecue caption`` makes of the same
    file (speech fused with the frames the batch analysed, not a second pipeline pass); the
    stage clip, sung in three utterances."""
    from facecue.captions.cues import render_captions
    from facecue.captions.media import caption_file
    from facecue.speech.transcribe import Transcriber

    clip = shared / "media" / "videos" / "fr_short_hamilton_clip.mp4"
    report = run_batch([str(clip)], tmp_path, Settings(captions=True), workers=1,
                       progress=False)
    assert (report.processed, report.failed) == (1, 0)
    folder = tmp_path / "videos" / Job.of(clip).name
    record = json.loads((folder / "video.json").read_text())
    assert record["captions"] >= 2 and record["warning"] is None
    want = caption_file(clip, fmt="json", transcriber=Transcriber(cpu_threads=1))
    assert (folder / "captions.json").read_text() == want.text  # every utterance, every field
    for fmt in ("vtt", "srt"):
        assert (folder / f"captions.{fmt}").read_text() == render_captions(want.items, fmt)
    assert "harder" in (folder / "captions.srt").read_text().lower()
    assert (folder / "captions.css").exists()


def test_captions_of_a_video_without_sound(shared: Path, tmp_path: Path):
    """A video with no audio track: its faces as usual, no caption files, and why."""
    import cv2

    cap = cv2.VideoCapture(str(shared / "media" / "videos" / "pyfeat_single_face.mp4"))
    silent = tmp_path / "silent.avi"
    writer = cv2.VideoWriter(str(silent), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 360))
    for _ in range(20):
        writer.write(cap.read()[1])
    writer.release()
    report = run_batch([str(silent)], tmp_path / "out", Settings(captions=True), workers=1,
                       progress=False)
    assert (report.processed, report.failed) == (1, 0)
    folder = tmp_path / "out" / "videos" / Job.of(silent).name
    record = json.loads((folder / "video.json").read_text())
    assert (record["status"], record["frames"], record["captions"]) == ("done", 20, None)
    assert record["warning"] == "no audio track: no captions"
    assert not list(folder.glob("captions.*"))


def test_progress_line():
    now = [0.0]
    bar = Progress(4, 1, enabled=False, clock=lambda: now[0])
    now[0] = 10.0
    bar.done({"skipped": False, "frames": 500, "status": "done"})
    assert bar.line() == "2/4 videos (1 already done, 0 failed), 50.0 frames/s, ETA 0:00:20"
    bar.done({"skipped": False, "frames": 0, "status": "failed", "video": "x", "error": "y"})
    bar.done({"skipped": True, "frames": 0, "status": "done"})
    assert bar.line().startswith("4/4 videos (2 already done, 1 failed)")
    assert bar.line().endswith("ETA 0:00:00")


def test_inputs(library: Path, tmp_path: Path):
    assert [Path(v).relative_to(library).as_posix() for v in find_videos(library)] == sorted(
        [*CLIPS, "sub/corrupt.mp4", "sub/cut.mp4"])
    assert find_videos(f"{library}/**/*.mp4") == sorted(
        str(p) for p in library.rglob("*.mp4"))
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,note\n{library / CLIPS[1]},x\nrelative.mp4,y\n")
    assert find_videos(manifest) == [str(library / CLIPS[1]), str(tmp_path / "relative.mp4")]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"video": [str(library / CLIPS[0])]}), tmp_path / "m.parquet")
    assert find_videos(tmp_path / "m.parquet") == [str(library / CLIPS[0])]
    with pytest.raises(FileNotFoundError):
        find_videos(tmp_path / "nothing-here")


def test_rerun_does_no_work(reference: Path, library: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    records = {p: p.read_bytes() for p in out.glob("videos/*/video.json")}
    report = run_batch(find_videos(library), out, SETTINGS, workers=2, progress=False)
    assert (report.processed, report.skipped, report.frames, report.workers) == (0, 6, 0, 0)
    assert {p: p.read_bytes() for p in out.glob("videos/*/video.json")} == records
    assert_same(out, reference)
    # other settings are other work: the videos are done again (and only the readable ones
    # give frames)
    again = run_batch(find_videos(library), out, Settings(max_frames=5), workers=2,
                      progress=False)
    assert (again.processed, again.skipped, again.frames) == (6, 0, 4 * 5)


def watch_and_kill(out: Path, stop: threading.Event, killed: list[int]) -> None:
    """Kill (SIGKILL) the first worker seen writing a video: its PID is in the partial
    folder's name."""
    while not stop.is_set():
        for path in (out / "videos").glob(".*.partial-*") if (out / "videos").exists() else ():
            match = PARTIAL.fullmatch(path.name)
            if match:
                os.kill(int(match[2]), signal.SIGKILL)
                killed.append(int(match[2]))
                return
        time.sleep(0.002)


def batch_with_a_kill(library: Path, out: Path, **kwargs) -> tuple:
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=watch_and_kill, args=(out, stop, killed))
    watcher.start()
    try:
        report = run_batch(find_videos(library), out, SETTINGS, progress=False, **kwargs)
    finally:
        stop.set()
        watcher.join()
    return report, killed


def test_pool_worker_killed(reference: Path, library: Path, tmp_path: Path):
    out = tmp_path / "out"
    report, killed = batch_with_a_kill(library, out, workers=2)
    assert len(killed) == 1
    assert report.processed >= 6 and report.failed == 2  # the corrupt and the cut file
    assert_same(out, reference)


def test_interrupted_batch_then_rerun(reference: Path, library: Path, tmp_path: Path):
    """SIGTERM a batch on the command line once two videos are complete; the rerun does only
    the rest and the outputs are the undisturbed run's."""
    out = tmp_path / "out"
    batch = subprocess.Popen([*FACECUE, "batch", str(library), "--out", str(out), "--workers",
                              "1", "--max-frames", str(MAX_FRAMES), "--no-progress"],
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("videos/*/video.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    batch.send_signal(signal.SIGTERM)
    stderr = batch.communicate(timeout=60)[1]
    assert batch.returncode == 128 + signal.SIGTERM, stderr
    first = {p: p.read_bytes() for p in out.glob("videos/*/video.json")}
    assert 2 <= len(first) < 6 and not (out / "library.parquet").exists()
    report = run_batch(find_videos(library), out, SETTINGS, workers=2, progress=False)
    assert (report.processed, report.skipped) == (6 - len(first), len(first))
    assert {p: p.read_bytes() for p in first} == first  # the done ones untouched
    assert_same(out, reference)


def test_without_ray_says_what_to_install(library: Path, tmp_path: Path):
    code = ("import sys\nsys.modules['ray'] = None\nfrom facecue.cli import main\n"
            f"sys.exit(main(['batch', {str(library)!r}, '--out', {str(tmp_path)!r}, "
            "'--ray', 'auto']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install 'facecue[scale]'" in done.stderr
    assert not (tmp_path / "videos").exists()  # said before any work


def test_runtime_never_imports_ray(reference: Path, shared: Path, tmp_path: Path):
    """The pool, the tables and the facade run without importing Ray."""
    clip = shared / "media" / "videos" / "pyfeat_single_face.mp4"
    code = ("import sys, facecue\nfrom facecue.batch import run_batch\n"
            f"run_batch([{str(clip)!r}], {str(tmp_path)!r}, workers=1, progress=False)\n"
            f"facecue.to_dataframe(facecue.analyze({str(shared / 'media/photos/fr_obama.jpg')!r}"
            "))\nprint(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ---- Ray ------------------------------------------------------------------------------------

def ray_processes(marker: str) -> set[int]:
    """PIDs of the processes whose command line holds ``marker`` (our Ray temp folder), and
    all their descendants."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            table[int(entry)] = (ppid, cmd)
    found = {pid for pid, (_, cmd) in table.items() if marker in cmd}
    while True:
        more = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        if not more:
            return found
        found |= more


def stop_processes(pids: set[int]) -> None:
    """SIGTERM ``pids``, then SIGKILL those still there after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance started by the test (two CPUs, no dashboard, its files in a
    folder of ours), stopped with every process it started."""
    import tempfile

    import ray

    temp = tempfile.mkdtemp(prefix="facecue-test-ray-")  # short: Ray's socket paths
    term = signal.getsignal(signal.SIGTERM)  # ray.init sets its own
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")  # all of Ray's traffic stays on this machine
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False,
                 configure_logging=False)
        try:
            yield ray
        finally:
            ray.shutdown()
            signal.signal(signal.SIGTERM, term)
            stop_processes(ray_processes(temp))
            shutil.rmtree(temp, ignore_errors=True)


def test_ray_local_equals_pool(local_ray, reference: Path, library: Path, tmp_path: Path):
    report = run_batch(find_videos(library), tmp_path, SETTINGS, ray="auto", progress=False)
    assert (report.engine, report.workers, report.processed) == ("ray", 2, 6)
    assert_same(tmp_path, reference)


def test_ray_worker_killed(local_ray, reference: Path, library: Path, tmp_path: Path):
    report, killed = batch_with_a_kill(library, tmp_path, ray="auto")
    assert len(killed) == 1 and report.failed == 2
    assert_same(tmp_path, reference)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_cluster_address(reference: Path, library: Path, tmp_path: Path):
    """A head node started with ``ray start`` on 127.0.0.1, and ``facecue batch --ray
    127.0.0.1:PORT`` from another process (token auth, as Ray has it on by default)."""
    import tempfile

    ray_cli = Path(sys.executable).with_name("ray")
    temp = tempfile.mkdtemp(prefix="facecue-test-head-")
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        subprocess.run([str(ray_cli), "start", "--head", "--node-ip-address=127.0.0.1",
                        f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                        f"--temp-dir={temp}", "--disable-usage-stats"], env=env, check=True,
                       capture_output=True, timeout=120)
        done = subprocess.run([*FACECUE, "batch", str(library), "--out", str(tmp_path),
                               "--ray", f"127.0.0.1:{port}", "--max-frames", str(MAX_FRAMES),
                               "--no-progress"], env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        stop_processes(ray_processes(temp))
        shutil.rmtree(temp, ignore_errors=True)
    assert done.returncode == 1, done.stderr  # 1: some videos failed (the two bad files)
    assert "on ray with 2 workers" in done.stderr
    assert_same(tmp_path, reference)
