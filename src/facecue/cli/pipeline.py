"""``facecue run``, ``analyze`` and ``demo``: the face pipeline on streams and images."""

from __future__ import annotations

import argparse
import json

from facecue.cli import (
    add_model_options,
    add_workers_option,
    at_least,
    command,
    load_pipeline,
    log,
)
from facecue.cli.speech import add_language_options, describe, make_transcriber

VIDEO = "../shared/media/videos/pyfeat_single_face.mp4"


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "run", "faces, keypoints and emotions live from a camera, video or URL",
                f"facecue run {VIDEO} --out out --no-window", _run)
    p.add_argument("source", nargs="?", default="0",
                   help="webcam index, video file, image, folder or rtsp/http URL (default 0)")
    p.add_argument("--out", help="folder for annotated.mp4, faces.jsonl, summary.csv, snapshots")
    p.add_argument("--jsonl", help="JSON Lines file, one record per frame and face (- = "
                   "stdout; the default with no --out and no window)")
    p.add_argument("--parquet", metavar="FILE", help="Parquet file, one row per frame and face "
                   "(the columns of facecue batch's faces.parquet; needs facecue[scale])")
    p.add_argument("--no-window", action="store_true", help="do not open a window")
    p.add_argument("--max-frames", type=at_least(0), default=0, help="stop after N frames")
    p.add_argument("--detect-every", type=at_least(1), default=5,
                   help="frames between re-detections of a tracked face (default 5)")
    p.add_argument("--snapshot-every", type=float, default=0.0,
                   help="also save a snapshot every S seconds (with --out)")
    p.add_argument("--speech", action="store_true",
                   help="caption the latest emotion-marked sentence live (needs "
                        "facecue[speech]; a webcam also needs facecue[mic])")
    add_model_options(p)
    add_workers_option(p)
    add_language_options(p)

    p = command(sub, "analyze", "faces, keypoints and emotions in images",
                "facecue analyze ../shared/media/photos --json", _analyze)
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, or folders (their images, sorted by name)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per line and image: {\"image\": path, "
                        "\"faces\": [...]}, each face as documented by facecue.Face.as_dict "
                        "(or {\"image\": path, \"error\": why})")
    add_model_options(p)

    p = command(sub, "demo", "the pipeline on the webcam, or offline on a built-in clip",
                "facecue demo --builtin --out facecue-demo", _demo)
    p.add_argument("--out", default="facecue-demo", help="output folder (default facecue-demo)")
    p.add_argument("--builtin", action="store_true", help="use the built-in clip, not a webcam")
    p.add_argument("--max-frames", type=at_least(1), default=300,
                   help="webcam frames to process (default 300)")
    add_model_options(p)
    add_workers_option(p)


def _run(args: argparse.Namespace) -> int:
    from facecue.api import run
    from facecue.video.sinks import has_display
    from facecue.video.sources import open_source

    window, why = (False, "") if args.no_window else has_display()
    if why:
        log.warning("no window: %s", why)
    speech = None
    if args.speech:
        from facecue.captions.live import LiveCaptioner, SpeechFeed

        speech = SpeechFeed(args.source, LiveCaptioner(make_transcriber(args)))
    pipeline = load_pipeline(args, detect_every=args.detect_every)
    sinks = []
    if args.parquet:
        from facecue.batch.table import ParquetSink

        sinks.append(ParquetSink(args.parquet, pipeline.expression.labels))
    source = open_source(args.source)
    quiet = window or args.out or args.parquet  # else the JSON Lines go to standard output
    report = run(source, args.out, jsonl=args.jsonl or (None if quiet else "-"),
                 window=window, pipeline=pipeline, max_frames=args.max_frames,
                 snapshot_every=args.snapshot_every, speech=speech, sinks=sinks)
    _tell(report)
    for line in speech.captioner.lines if speech is not None else []:
        u = line.item.utterance
        log.info("said %.2f-%.2f s: %s  (%s, %s)", u.start, u.end, line.sentence,
                 line.item.emotion, describe(line.item))
    return 1 if source.independent and report.skipped else 0  # image files that failed


def _demo(args: argparse.Namespace) -> int:
    from facecue.api import demo

    _tell(demo(args.out, builtin=args.builtin, max_frames=args.max_frames,
               pipeline=load_pipeline(args)))
    return 0


def _tell(report) -> None:
    """A run's report, on standard error."""
    log.info("%d frames (%d skipped%s), faces in %d, %d face IDs, %.1f FPS", report.frames,
             report.skipped, f", {report.ended_early}" if report.ended_early else "",
             report.face_frames, len(report.track_ids), report.fps)
    log.info("ms/frame %s", ", ".join(f"{k} {v:.1f}" for k, v in report.stage_ms.items()))
    log.debug("models: %s; %d worker thread%s", "; ".join(
        f"{k} {v}" for k, v in report.models.items()), report.workers, "s" * (report.workers > 1))
    for path in report.files:
        if path.is_dir():
            log.info("wrote %s/ (%d files)", path, sum(1 for _ in path.iterdir()))
        else:
            log.info("wrote %s", path)


def _analyze(args: argparse.Namespace) -> int:
    from facecue.api import analyze_files

    failed = 0
    for image in analyze_files(args.images, pipeline=load_pipeline(args)):
        failed += image.error is not None
        if image.error is not None:
            log.error("%s: %s", image.path, image.error)
        if args.json:
            what = {"error": image.error} if image.error is not None else {
                "faces": [face.as_dict() for face in image.faces]}
            print(json.dumps({"image": str(image.path), **what}), flush=True)
        elif image.error is None:
            desc = "; ".join(f"{list(f.box)} {f.expression.label} {f.expression.score:.0%}"
                             for f in image.faces)
            print(f"{image.path}: {len(image.faces)} face(s){': ' + desc if desc else ''}",
                  flush=True)  # as each image is done: an interrupt keeps those before it
    return 1 if failed else 0
