"""The ``facecue`` command line. Each command imports its module lazily, so commands that need
no extras (``run``, ``analyze``, ``eval``) work without torch or the speech packages."""

from __future__ import annotations

import argparse
import sys

from facecue.provenance import running_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="facecue", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model (needs facecue[train])")
    train_sub = train.add_subparsers(dest="task", required=True)
    evaluate = sub.add_parser("eval", help="evaluate a model on labelled data")
    eval_sub = evaluate.add_subparsers(dest="task", required=True)

    _add_expression_parsers(train_sub, eval_sub, sub)
    _add_keypoints_parsers(train_sub, eval_sub, sub)
    _add_pipeline_parsers(sub)
    _add_speech_parsers(sub)

    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    with running_command(argv):
        try:
            return int(args.handler(args) or 0)
        except (FileNotFoundError, ValueError, RuntimeError) as e:
            print(f"facecue: error: {e}", file=sys.stderr)
            return 2


def _add_run_options(p, threads: int) -> None:
    """The options every training command shares: seed, threads, smoke-run limit, resume."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=threads)
    p.add_argument("--limit", type=int, default=0, help="use only N rows per split (smoke runs)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")


# --- keypoints (15 Kaggle keypoints) -----------------------------------------------------


def _add_keypoints_parsers(train_sub, eval_sub, sub) -> None:
    p = train_sub.add_parser("keypoints", help="train the 15-keypoint model")
    p.add_argument("--data", required=True,
                   help="Kaggle-format training.csv[.gz] (from `facecue data from-68`)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, model)")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--width", type=int, default=16, help="channels of the first conv stage")
    p.add_argument("--flip-prob", type=float, default=0.0,
                   help="share of training crops mirrored (left/right keypoints swapped)")
    p.add_argument("--cutout-prob", type=float, default=0.0,
                   help="share of training crops with a blanked rectangle (occlusion)")
    p.add_argument("--context-head", action=argparse.BooleanOptionalAction, default=False,
                   help="dilated 3x3 heat-map conv (else 1x1)")
    p.add_argument("--fine-heatmaps", action=argparse.BooleanOptionalAction, default=False,
                   help="24x24 heat maps: upsampled, plus a 1x1 conv of 24x24 features "
                        "(else 12x12)")
    p.add_argument("--init", help="start from this best.pt: a `train keypoints` run's (every "
                                  "weight) or a `train keypoint-backbone` run's (conv stages)")
    p.add_argument("--with-val", action="store_true",
                   help="final refit: train on the train and val rows together and keep the "
                        "last epoch (settings chosen on val beforehand; test stays held out)")
    p.add_argument("--loss", choices=["smooth-l1", "point"], default="smooth-l1",
                   help="smooth-L1 per coordinate, or each point's distance (what NME measures)")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="also keep a moving average of the weights (OUT/ema.pt, scored every "
                        "epoch as ema_*); it leaves the trained weights as they would be")
    _add_run_options(p, threads=1)
    p.add_argument("--plots", action="store_true", help="write training-curve and face PNGs")
    p.set_defaults(handler=_cmd_train_keypoints)

    p = train_sub.add_parser("keypoint-backbone", help="pretrain the keypoint net's conv stages "
                             "on FER2013 faces (fer7 classes, keypoint-crop framing)")
    p.add_argument("--data", required=True, help="fer2013.csv[.gz]")
    p.add_argument("--out", required=True, help="run directory (checkpoints, best.pt)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--width", type=int, default=16, help="must match `train keypoints --width`")
    _add_run_options(p, threads=1)
    p.set_defaults(handler=_cmd_train_keypoint_backbone)

    p = eval_sub.add_parser("keypoints", help="evaluate a keypoint model")
    p.add_argument("--data", required=True,
                   help="Kaggle-format CSV or a 68-point folder (like youtube-faces-68)")
    p.add_argument("--split", help="train, val, test or all (default: test when the data has "
                                   "an identity split, else all)")
    p.add_argument("--model", help="ONNX file (default: the shipped model)")
    p.add_argument("--limit", type=int, default=0, help="first N rows of the split only")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--plots", help="write a face grid with predicted/true keypoints here")
    p.set_defaults(handler=_cmd_eval_keypoints)

    data = sub.add_parser("data", help="prepare training data").add_subparsers(
        dest="task", required=True)
    p = data.add_parser("from-68", help="68-point folder -> Kaggle-format 96x96 training.csv")
    p.add_argument("folder", help="folder with NAME_frames_keypoints.csv and NAME/ images")
    p.add_argument("--out", required=True, help="training.csv or training.csv.gz")
    p.set_defaults(handler=_cmd_data_from_68)

    kp = sub.add_parser("keypoints", help="Kaggle keypoints files and model shipping")
    kp_sub = kp.add_subparsers(dest="task", required=True)
    p = kp_sub.add_parser("submit", help="predict test.csv and write a Kaggle submission")
    p.add_argument("--test", required=True, help="Kaggle test.csv[.gz] (ImageId, Image)")
    p.add_argument("--lookup", required=True, help="IdLookupTable.csv[.gz]")
    p.add_argument("--out", required=True, help="submission CSV (RowId,Location)")
    p.add_argument("--model", help="ONNX file (default: the shipped model)")
    p.set_defaults(handler=_cmd_keypoints_submit)
    p = kp_sub.add_parser("pseudo-label", help="label FER2013 Training faces with finished "
                          "runs' mean keypoints: a Kaggle-format CSV to train a student on")
    p.add_argument("runs", nargs="+", help="run directories of `facecue train keypoints`")
    p.add_argument("--fer", required=True, help="fer2013.csv[.gz]")
    p.add_argument("--out", required=True, help="training.csv[.gz] to write")
    p.add_argument("--limit", type=int, default=0, help="first N Training faces only")
    p.set_defaults(handler=_cmd_keypoints_pseudo_label)
    p = kp_sub.add_parser("blend-labels", help="relabel the train (and val) rows of a keypoints "
                          "CSV as a blend of their own and finished runs' mean keypoints")
    p.add_argument("runs", nargs="+", help="run directories of `facecue train keypoints`")
    p.add_argument("--data", required=True, help="training.csv[.gz] with a Split column")
    p.add_argument("--splits", nargs="+", default=["train"], choices=["train", "val"],
                   help="rows to relabel (val only for a final --with-val refit)")
    p.add_argument("--weight", type=float, default=0.5, help="share of the rows' own keypoints")
    p.add_argument("--out", required=True, help="training.csv[.gz] to write")
    p.set_defaults(handler=_cmd_keypoints_blend_labels)
    p = kp_sub.add_parser("ship", help="build the shipped model from training runs: their "
                          "mean keypoints, int8; card with every member's record")
    p.add_argument("runs", nargs="+", help="run directories of `facecue train keypoints`")
    p.add_argument("--no-quantize", action="store_true", help="keep float32 weights")
    p.add_argument("--weights", default=None, help="target folder (default: facecue/weights)")
    p.set_defaults(handler=_cmd_keypoints_ship)


def _cmd_train_keypoints(args) -> int:
    from facecue.train.keypoints import train_keypoints

    result = train_keypoints(**{k: v for k, v in vars(args).items()
                                if k not in ("command", "task", "handler")})
    for split, m in result["metrics"].items():
        print(f"{split}: rmse_px96 {m['rmse_px96']:.3f} nme {m['nme']:.4f} n={m['n']}")
    return 0


def _cmd_train_keypoint_backbone(args) -> int:
    from facecue.train.keypoints import pretrain_backbone

    run = pretrain_backbone(args.data, args.out, epochs=args.epochs, width=args.width,
                            seed=args.seed, threads=args.threads, limit=args.limit,
                            resume=args.resume)
    print(f"best PublicTest accuracy {run['best']:.4f} at epoch {run['best_epoch']}; "
          f"{args.out}/best.pt")
    return 0


def _cmd_eval_keypoints(args) -> int:
    import json

    from facecue.evaluation.evaluate import evaluate_keypoints

    report = evaluate_keypoints(args.data, split=args.split, model=args.model,
                                limit=args.limit, plots=args.plots)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        line = (f"{report['split']}: rmse_px96 {report['rmse_px96']:.3f} nme "
                f"{report['nme']:.4f} on n={report['n']}")
        spread = report.get("interval_over_people")
        if spread:
            line += (f" ({spread['people']} people; 95 % intervals when they are resampled: "
                     f"rmse_px96 {spread['rmse_px96'][0]:.3f}-{spread['rmse_px96'][1]:.3f}, "
                     f"nme {spread['nme'][0]:.4f}-{spread['nme'][1]:.4f})")
        print(line)
    return 0


def _cmd_data_from_68(args) -> int:
    from facecue.formats.kaggle_keypoints import write_training_csv
    from facecue.formats.landmarks68 import convert_landmarks68, read_landmarks68

    rows = convert_landmarks68(read_landmarks68(args.folder), progress=True)
    write_training_csv(args.out, rows)
    fallback = int((rows.extra["Fallback"] == "1").sum())
    print(f"{args.out}: {len(rows)} faces, {fallback} cut from the calibrated landmark box")
    return 0


def _cmd_keypoints_submit(args) -> int:
    from facecue.formats.kaggle_keypoints import make_submission

    n = make_submission(args.test, args.lookup, args.out, model=args.model)
    print(f"{args.out}: {n} rows")
    return 0


def _cmd_keypoints_pseudo_label(args) -> int:
    from facecue.train.keypoints import pseudo_label

    n = pseudo_label(args.runs, args.fer, args.out, limit=args.limit)
    print(f"{args.out}: {n} FER2013 Training faces with the runs' mean keypoints")
    return 0


def _cmd_keypoints_blend_labels(args) -> int:
    from facecue.train.keypoints import blend_labels

    n = blend_labels(args.runs, args.data, args.out, args.splits, args.weight)
    print(f"{args.out}: {n} rows ({', '.join(args.splits)}) relabelled")
    return 0


def _cmd_keypoints_ship(args) -> int:
    from facecue.train.keypoints import ship_model
    from facecue.vision.runtime import WEIGHTS

    card = ship_model(args.runs, args.weights or str(WEIGHTS), quantize=not args.no_quantize)
    print(f"shipped keypoints15.onnx sha256 {card['sha256']}")
    return 0


# --- expression (FER2013) ---------------------------------------------------------------


def _add_expression_parsers(train_sub, eval_sub, sub) -> None:
    p = train_sub.add_parser("expression", help="train the FER2013 expression model")
    p.add_argument("--labels", choices=["fer5", "fer7"], default="fer7")
    p.add_argument("--data", required=True, help="fer2013.csv[.gz] or icml_face_data.csv")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, model)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--width", type=int, default=24, help="channels of the first conv stage")
    _add_run_options(p, threads=2)
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument("--plots", action="store_true",
                   help="write training curves, confusion matrix and a face grid (PNG)")
    p.set_defaults(handler=_cmd_train_expression)

    p = eval_sub.add_parser("expression", help="evaluate an expression model")
    p.add_argument("--labels", choices=["fer5", "fer7"], default="fer7")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="PrivateTest",
                   help="Training, PublicTest, PrivateTest or all")
    p.add_argument("--model", help="ONNX file (default: the shipped model)")
    p.add_argument("--limit", type=int, default=0, help="first N rows of the split only")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--plots", help="write confusion-matrix and face-grid PNGs to this folder")
    p.add_argument("--skip-bad-rows", action="store_true")
    p.set_defaults(handler=_cmd_eval_expression)

    ex = sub.add_parser("expression", help="expression model shipping")
    p = ex.add_subparsers(dest="task", required=True).add_parser(
        "ship", help="build the shipped model from training runs: their mean probability on "
                     "the face and its mirror image, int8; card with every member's record")
    p.add_argument("runs", nargs="+", help="run directories of `facecue train expression`")
    p.add_argument("--labels", choices=["fer5", "fer7"], required=True)
    p.add_argument("--data", required=True, help="the FER2013 file the runs were trained on")
    mirror = p.add_mutually_exclusive_group()
    mirror.add_argument("--no-mirror", action="store_true", help="skip the mirror-image pass")
    mirror.add_argument("--mirror-only", nargs="+", metavar="RUN", default=None,
                        help="read only these of the runs also on the mirror image")
    p.add_argument("--no-quantize", action="store_true", help="keep float32 weights")
    p.add_argument("--weights", default=None, help="target folder (default: facecue/weights)")
    p.set_defaults(handler=_cmd_expression_ship)


def _cmd_expression_ship(args) -> int:
    from facecue.train.ship_expression import ship_expression
    from facecue.vision.runtime import WEIGHTS

    mirror: bool | list[bool] = not args.no_mirror
    if args.mirror_only:
        if unknown := set(args.mirror_only) - set(args.runs):
            raise ValueError(f"--mirror-only names runs not being shipped: {sorted(unknown)}")
        mirror = [run in args.mirror_only for run in args.runs]
    card = ship_expression(args.runs, args.labels, args.data, args.weights or str(WEIGHTS),
                           mirror=mirror, quantize=not args.no_quantize)
    print(f"shipped expression_{args.labels}.onnx sha256 {card['sha256']}")
    return 0


def _cmd_train_expression(args) -> int:
    from facecue.train.expression import train_expression

    train_expression(**{k: v for k, v in vars(args).items()
                        if k not in ("command", "task", "handler")})
    return 0


def _cmd_eval_expression(args) -> int:
    import json

    from facecue.evaluation.evaluate import evaluate_expression

    report = evaluate_expression(args.data, labels=args.labels, split=args.split,
                                 model=args.model, limit=args.limit, plots=args.plots,
                                 skip_bad=args.skip_bad_rows)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.labels} {args.split}: accuracy {report['accuracy']:.4f} on n={report['n']}"
              f"; without cross-split duplicates {report['dedup']['accuracy']:.4f}"
              f" on n={report['dedup']['n']}")
    return 0


# --- face pipeline: run, analyze, demo ----------------------------------------------------


def _add_pipeline_parsers(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--labels", choices=["fer5", "fer7"], default="fer7")
    common.add_argument("--expression-model", help="ONNX file (default: the shipped model)")
    common.add_argument("--keypoints-model", help="ONNX file (default: the shipped model)")
    common.add_argument("--detector", choices=["haar", "mediapipe"], default="haar",
                        help="mediapipe needs facecue[mediapipe]")
    common.add_argument("--threads", type=int, default=1, help="onnxruntime threads per model")

    p = sub.add_parser("run", parents=[common],
                       help="faces, keypoints and emotions live from a camera, video or URL")
    p.add_argument("source", nargs="?", default="0",
                   help="webcam index, video file, image, folder or rtsp/http URL (default 0)")
    p.add_argument("--out", help="folder for annotated.mp4, faces.jsonl, summary.csv, snapshots")
    p.add_argument("--jsonl", help="JSON Lines file, one record per frame and face (- = stdout)")
    p.add_argument("--no-window", action="store_true", help="do not open a window")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames")
    p.add_argument("--detect-every", type=int, default=5,
                   help="frames between re-detections of a tracked face")
    p.add_argument("--snapshot-every", type=float, default=0.0,
                   help="also save a snapshot every S seconds (with --out)")
    p.add_argument("--speech", action="store_true",
                   help="caption the latest emotion-marked sentence live (needs "
                        "facecue[speech]; a webcam also needs facecue[mic])")
    _add_language_options(p)
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("analyze", parents=[common], help="faces, keypoints and emotions in images")
    p.add_argument("images", nargs="+")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_analyze)

    p = sub.add_parser("demo", parents=[common],
                       help="run the pipeline on the webcam, or offline on a built-in clip")
    p.add_argument("--out", default="facecue-demo", help="output folder (default facecue-demo)")
    p.add_argument("--builtin", action="store_true", help="use the built-in clip, not a webcam")
    p.add_argument("--max-frames", type=int, default=300, help="webcam frames to process")
    p.set_defaults(handler=_cmd_demo)


def _pipeline(args, **kwargs):
    from facecue.video.pipeline import Pipeline
    from facecue.vision.detect import make_detector
    from facecue.vision.runtime import ExpressionModel, KeypointModel

    return Pipeline(ExpressionModel.load(args.labels, args.expression_model, args.threads),
                    KeypointModel.load(args.keypoints_model, args.threads),
                    make_detector(args.detector), **kwargs)


def _run_and_report(args, source, out, jsonl, window: bool, max_frames: int) -> int:
    import os

    from facecue.api import run_to_folder

    pipe = _pipeline(args, detect_every=getattr(args, "detect_every", 5))
    speech = None
    if getattr(args, "speech", False):
        from facecue.captions.live import LiveCaptioner, SpeechFeed

        speech = SpeechFeed(source, LiveCaptioner(_transcriber(args)))
    try:
        stats, files = run_to_folder(source, out, jsonl, window, pipe, max_frames,
                                     getattr(args, "snapshot_every", 0.0), speech)
    except KeyboardInterrupt:
        print("facecue: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (piped into head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    print(f"facecue: {stats.frames} frames ({stats.skipped} skipped), faces in "
          f"{stats.face_frames}, {len(stats.ids)} face IDs, {stats.fps:.1f} FPS", file=sys.stderr)
    print("facecue: ms/frame " + ", ".join(f"{k} {v:.1f}" for k, v in stats.stage_ms.items()),
          file=sys.stderr)
    for f in files:
        print(f"facecue: wrote {f}", file=sys.stderr)
    for line in speech.captioner.lines if speech is not None else []:
        u = line.item.utterance
        print(f"facecue: said {u.start:.2f}-{u.end:.2f} s: {line.sentence}", file=sys.stderr)
    return 0


def _cmd_run(args) -> int:
    from facecue.video.sinks import has_display

    window = False
    if not args.no_window:
        window, why = has_display()
        if not window:
            print(f"facecue: no window: {why}", file=sys.stderr)
    jsonl = args.jsonl or ("-" if not (window or args.out) else None)
    return _run_and_report(args, args.source, args.out, jsonl, window, args.max_frames)


def _cmd_analyze(args) -> int:
    import json

    pipe = _pipeline(args)
    report, failed = {}, 0
    for path in args.images:
        try:
            report[path] = [f.as_dict() for f in pipe.analyze(path)]
        except (OSError, ValueError) as e:
            report[path] = {"error": str(e)}
            failed += 1
    if args.json:
        print(json.dumps(report, indent=1))
    for path, faces in report.items():
        if "error" in faces:
            print(f"facecue: {path}: {faces['error']}", file=sys.stderr)
        elif not args.json:
            desc = "; ".join(f"{f['box']} {f['label']} {f['probs'][f['label']]:.0%}"
                             for f in faces)
            print(f"{path}: {len(faces)} face(s){': ' + desc if faces else ''}")
    return 1 if failed else 0


def _cmd_demo(args) -> int:
    from importlib import resources

    from facecue.video.sinks import has_display
    from facecue.video.sources import SourceError, VideoSource

    source, max_frames = None, args.max_frames
    if not args.builtin:
        try:
            source = VideoSource(0, reconnect=0)
        except SourceError:
            print("facecue: no webcam found; running on the built-in clip", file=sys.stderr)
    if source is None:
        source, max_frames = str(resources.files("facecue") / "assets/demo_astronaut.mp4"), 0
    window = isinstance(source, VideoSource) and has_display()[0]
    return _run_and_report(args, source, args.out, None, window, max_frames)


# --- speech: emotion-aware captions and expressive speech ---------------------------------


def _add_language_options(p) -> None:
    what = p.add_mutually_exclusive_group()
    what.add_argument("--vocabulary", help="words the speech likely holds (names, jargon), "
                      "given to speech recognition as hot words")
    what.add_argument("--grammar", help="command grammar file (one slot per line, "
                      "alternatives separated by |): each stretch of speech is read as one of "
                      "its sentences; see examples/grid.grammar")
    p.add_argument("--compute-type", choices=["int8", "float32"], default=None,
                   help="speech recognition arithmetic (default: int8 where this CPU's 8-bit "
                   "products are exact, float32 on x86 CPUs without VNNI)")


def _transcriber(args, **kwargs):
    from facecue.speech.grammar import Grammar
    from facecue.speech.transcribe import Transcriber

    grammar = Grammar.read(args.grammar) if args.grammar else None
    return Transcriber(vocabulary=args.vocabulary, grammar=grammar,
                       compute_type=args.compute_type, **kwargs)


def _add_speech_parsers(sub) -> None:
    p = sub.add_parser("caption", help="emotion-aware captions for a video or audio file "
                       "(needs facecue[speech])")
    p.add_argument("media", help="video or audio file (wav, flac, mp3, ogg, mp4, ...)")
    p.add_argument("--format", choices=["vtt", "srt", "json"], default="vtt")
    p.add_argument("--out", help="caption file (default: MEDIA's name with the format's suffix,"
                   " in the current folder)")
    p.add_argument("--labels", choices=["fer5", "fer7"], default="fer7")
    p.add_argument("--expression-model", help="ONNX file (default: the shipped model)")
    p.add_argument("--keypoints-model", help="ONNX file (default: the shipped model)")
    p.add_argument("--threads", type=int, default=2,
                   help="threads for speech recognition and for each face model")
    p.add_argument("--no-manner", action="store_true", help="no [manner] tags in the text")
    p.add_argument("--emoji", action="store_true", help="end sentences with an emoji")
    _add_language_options(p)
    p.set_defaults(handler=_cmd_caption, detector="haar")

    p = sub.add_parser("say", help="speak text with an emotion's prosody into a WAV file "
                       "(needs espeak-ng)")
    p.add_argument("text")
    p.add_argument("--emotion", default="neutral")
    p.add_argument("--intensity", type=float, default=0.5, help="0..1; >= 0.7 is strong")
    p.add_argument("--voice", default="en-us", help="espeak-ng voice")
    p.add_argument("--out", required=True, help="WAV file to write")
    p.add_argument("--ssml", action="store_true", help="also print the SSML")
    p.set_defaults(handler=_cmd_say)


def _cmd_caption(args) -> int:
    from pathlib import Path

    from facecue.captions.cues import write_captions
    from facecue.captions.media import emotional_utterances, has_video
    from facecue.speech.audio import has_audio

    media = Path(args.media)
    pipeline = _pipeline(args) if media.exists() and has_audio(media) and has_video(media) \
        else None  # emotional_utterances explains what is missing
    transcriber = _transcriber(args, cpu_threads=args.threads)
    print(f"speech recognition: Whisper base, {transcriber.model.model.compute_type} arithmetic")
    items = list(emotional_utterances(args.media, labels=args.labels, pipeline=pipeline,
                                      transcriber=transcriber))
    out = Path(args.out or Path(args.media).with_suffix(f".{args.format}").name)
    files = write_captions(out, items, args.format, manner=not args.no_manner,
                           emoji=args.emoji)
    for item in items:
        flags = [f for f in ("no_face", "disagree") if getattr(item, f)]
        print(f"{item.utterance.start:7.2f}-{item.utterance.end:7.2f}  {item.emotion:9s} "
              f"{item.sentence(not args.no_manner, args.emoji)}"
              + (f"  ({', '.join(flags)})" if flags else ""))
    if not items:
        print("no speech found: the caption file has no cues")
    print("wrote " + ", ".join(map(str, files)))
    return 0


def _cmd_say(args) -> int:
    from facecue.captions.tts import say, ssml

    if args.ssml:
        print(ssml(args.text, args.emotion, args.intensity))
    print(f"wrote {say(args.text, args.out, args.emotion, args.intensity, args.voice)}")
    return 0

