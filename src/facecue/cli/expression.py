"""``facecue train|eval|ship expression``: the FER2013 expression models."""

from __future__ import annotations

import argparse
import json

from facecue.cli import (
    add_labels_option,
    add_precision_option,
    add_training_options,
    at_least,
    command,
)

FER = "../shared/data/fer2013/fer2013.csv.gz"


def _add_ferplus_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ferplus", metavar="FILE",
                   help="FER+ votes (fer2013new.csv[.gz], row for row with --data); required "
                        "by --labels ferplus8, and only with it")
    p.add_argument("--provenance", metavar="FILE",
                   help="the rebuilt FER2013's provenance file: its rows of uncertain position "
                        "are left out of FER+ (default: provenance.csv.gz beside --data, when "
                        "there; without one every row is taken as aligned, as in Kaggle's "
                        "original file)")


def add_commands(verbs: dict[str, argparse._SubParsersAction]) -> None:
    p = command(verbs["train"], "expression", "train the FER2013 expression model",
                f"facecue train expression --labels fer7 --data {FER} "
                "--out runs/expression_fer7_e80 --epochs 80 --threads 1 --plots", _train)
    add_labels_option(p, default="fer7")
    p.add_argument("--data", required=True, help="fer2013.csv[.gz] or icml_face_data.csv")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, model)")
    p.add_argument("--epochs", type=at_least(1), default=60,
                   help="passes over Training (default 60)")
    p.add_argument("--batch-size", type=at_least(1), default=128,
                   help="faces per step (default 128)")
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate (default 0.05)")
    p.add_argument("--width", type=at_least(1), default=24,
                   help="channels of the first conv stage (default 24)")
    add_training_options(p, threads=2)
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip unreadable rows instead of stopping at the first")
    p.add_argument("--plots", action="store_true",
                   help="write training curves, confusion matrix and a face grid (PNG)")
    _add_ferplus_options(p)
    p.add_argument("--no-report", action="store_true",
                   help="an exploration run: leave PrivateTest (the report split) unscored; "
                        "PublicTest still chooses the epoch")
    p.add_argument("--target", choices=["soft", "majority"], default="soft",
                   help="ferplus8 target: soft (default: cross-entropy to each face's vote "
                        "distribution over the eight emotions) or majority (the clear-majority "
                        "emotion, rows without one left out)")

    p = command(verbs["eval"], "expression", "evaluate an expression model",
                f"facecue eval expression --labels fer7 --data {FER} --split PrivateTest",
                _eval)
    add_labels_option(p, default="fer7")
    p.add_argument("--data", required=True, help="fer2013.csv[.gz] or icml_face_data.csv")
    p.add_argument("--split", default="PrivateTest", choices=["Training", "PublicTest",
                                                              "PrivateTest", "all"],
                   help="rows to score (default PrivateTest)")
    p.add_argument("--model", help="ONNX file (default: the shipped model)")
    add_precision_option(p)
    p.add_argument("--limit", type=at_least(0), default=0, help="first N rows of the split only")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--plots", help="write confusion-matrix and face-grid PNGs to this folder")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip unreadable rows instead of stopping at the first")
    _add_ferplus_options(p)

    p = command(verbs["ship"], "expression", "build the shipped model from training runs: "
                "their mean probability on the face and its mirror image, int8; card with "
                "every member's record",
                "facecue ship expression runs/expression_fer7_e80 runs/expression_fer7_e80_s1 "
                f"--labels fer7 --data {FER}", _ship)
    p.add_argument("runs", nargs="+", help="run directories of `facecue train expression`")
    add_labels_option(p, required=True)
    p.add_argument("--data", required=True, help="the FER2013 file the runs were trained on")
    mirror = p.add_mutually_exclusive_group()
    mirror.add_argument("--no-mirror", action="store_true", help="skip the mirror-image pass")
    mirror.add_argument("--mirror-only", nargs="+", metavar="RUN", default=None,
                        help="read only these of the runs also on the mirror image")
    p.add_argument("--no-quantize", action="store_true", help="keep float32 weights")
    p.add_argument("--weights", default=None, help="target folder (default: facecue/weights)")
    _add_ferplus_options(p)


def _train(args: argparse.Namespace) -> int:
    from facecue.train.expression import train_expression

    train_expression(args.data, args.labels, args.out, epochs=args.epochs,
                     batch_size=args.batch_size, lr=args.lr, width=args.width, seed=args.seed,
                     threads=args.threads, limit=args.limit, resume=args.resume,
                     skip_bad_rows=args.skip_bad_rows, plots=args.plots,
                     ferplus=args.ferplus, provenance=args.provenance, target=args.target,
                     report=not args.no_report)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from facecue.evaluation.evaluate import evaluate_expression
    from facecue.formats.fer2013 import ReadReport

    report = evaluate_expression(args.data, labels=args.labels, split=args.split,
                                 model=args.model, precision=args.precision,
                                 limit=args.limit, plots=args.plots,
                                 skip_bad=args.skip_bad_rows, ferplus=args.ferplus,
                                 provenance=args.provenance)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    lo, hi = report["accuracy_interval95"]
    line = (f"{args.labels} {args.split}: accuracy {report['accuracy']:.4f} "
            f"[{lo:.4f}, {hi:.4f}] on n={report['n']}")
    if "cross_entropy_to_votes" in report:
        line += (f"; cross-entropy to the votes {report['cross_entropy_to_votes']:.4f}; left out"
                 f" of {report['rows_in_split']}: " + ", ".join(
                     f"{why} {n}" for why, n in report["left_out"].items()))
    line += (f"; without cross-split duplicates {report['dedup']['accuracy']:.4f}"
             f" on n={report['dedup']['n']}")
    if report["skipped_lines"]:
        line += f"; {ReadReport(skipped_lines=report['skipped_lines']).summary()}"
    print(line)
    return 0


def _ship(args: argparse.Namespace) -> int:
    from facecue.train.ship_expression import ship_expression

    card = ship_expression(args.runs, args.labels, args.data, args.weights,
                           mirror=not args.no_mirror, mirror_only=args.mirror_only,
                           quantize=not args.no_quantize, ferplus=args.ferplus,
                           provenance=args.provenance)
    print(f"shipped expression_{args.labels}.onnx sha256 {card['sha256']}")
    return 0
