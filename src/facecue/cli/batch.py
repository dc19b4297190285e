"""``facecue batch``: a whole media library on every core, or on a Ray cluster."""

from __future__ import annotations

import argparse

from facecue.cli import add_labels_option, add_precision_option, at_least, command, log

VIDEOS = "../shared/media/videos"


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "batch", "faces, emotions and captions for a whole library of videos, "
                "as Parquet tables (needs facecue[scale])",
                f"facecue batch {VIDEOS} --out library --captions", _batch)
    p.add_argument("input", help="folder (its videos, recursively), glob ('clips/**/*.mp4'), "
                   "or manifest .csv/.parquet with a path, video, url or file column")
    p.add_argument("--out", required=True,
                   help="output folder: videos/NAME/ per video (faces.parquet, summary.csv, "
                        "timeline.png, captions.*, video.json) and library.parquet")
    p.add_argument("--captions", action="store_true",
                   help="also captions.vtt/.srt/.json per video (needs facecue[speech])")
    p.add_argument("--workers", type=at_least(1), default=None,
                   help="worker processes (default: every usable core; with --ray auto, the "
                        "CPUs of the local Ray instance)")
    p.add_argument("--ray", metavar="auto|ADDRESS", default=None,
                   help="run on Ray: auto = the cluster at $RAY_ADDRESS, else a local instance "
                        "started for this batch; or a cluster's address (HOST:PORT)")
    p.add_argument("--max-frames", type=at_least(0), default=0,
                   help="frames per video (default 0: all)")
    p.add_argument("--retries", type=at_least(0), default=2,
                   help="more tries for a video whose worker process died (default 2)")
    p.add_argument("--retry-failed", action="store_true",
                   help="do again the videos an earlier batch recorded as failed")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    add_labels_option(p)
    add_precision_option(p)
    p.add_argument("--detector", choices=["blazeface", "blazeface-short", "haar"],
                   default="blazeface", help="face detector (default blazeface)")


def _batch(args: argparse.Namespace) -> int:
    from facecue.batch import Settings, find_videos, run_batch
    from facecue.batch.runner import import_ray
    from facecue.batch.table import _arrow

    _arrow()  # what to install, before any work
    if args.ray is not None:
        import_ray()
    videos = find_videos(args.input)
    settings = Settings(labels=args.labels, precision=args.precision, detector=args.detector,
                        captions=args.captions, max_frames=args.max_frames)
    log.info("%d videos from %s", len(videos), args.input)
    report = run_batch(videos, args.out, settings, workers=args.workers, ray=args.ray,
                       retries=args.retries, retry_failed=args.retry_failed,
                       progress=not args.no_progress)
    log.info("%d videos: %d processed, %d already done, %d failed; %d frames in %.1f s "
             "(%.1f frames/s) on %s with %d worker%s", report.videos, report.processed,
             report.skipped, report.failed, report.frames, report.seconds, report.fps,
             report.engine, report.workers, "s" * (report.workers != 1))
    log.info("wrote %s", report.library)
    return 1 if report.failed else 0
