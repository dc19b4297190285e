"""``facecue train|eval|ship keypoints``, ``train keypoint-backbone``, ``label pseudo|blend``
and ``submit keypoints``: the 15-keypoint models and their data."""

from __future__ import annotations

import argparse
import json

from facecue.cli import add_precision_option, add_training_options, at_least, command

FER = "../shared/data/fer2013/fer2013.csv.gz"
KAGGLE = "../shared/data/kaggle-facial-keypoints"
TRAIN = "runs/yt68_keypoints.csv.gz"


def add_commands(verbs: dict[str, argparse._SubParsersAction]) -> None:
    p = command(verbs["train"], "keypoints", "train the 15-keypoint model",
                f"facecue train keypoints --data {TRAIN} --out runs/kp --epochs 80 "
                "--threads 1 --plots", _train)
    p.add_argument("--data", required=True,
                   help="Kaggle-format training.csv[.gz] (from `facecue data from-68`)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, model)")
    p.add_argument("--epochs", type=at_least(1), default=80,
                   help="passes over the data (default 80)")
    p.add_argument("--batch-size", type=at_least(1), default=64, help="faces per step (default 64)")
    p.add_argument("--lr", type=float, default=0.002, help="peak learning rate (default 0.002)")
    p.add_argument("--width", type=at_least(1), default=16,
                   help="channels of the first conv stage (default 16)")
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
    add_training_options(p, threads=1)
    p.add_argument("--plots", action="store_true", help="write training-curve and face PNGs")

    p = command(verbs["train"], "keypoint-backbone", "pretrain the keypoint net's conv stages "
                "on FER2013 faces (fer7 classes, keypoint-crop framing)",
                f"facecue train keypoint-backbone --data {FER} --out runs/kp_backbone",
                _train_backbone)
    p.add_argument("--data", required=True, help="fer2013.csv[.gz]")
    p.add_argument("--out", required=True, help="run directory (checkpoints, best.pt)")
    p.add_argument("--epochs", type=at_least(1), default=10,
                   help="passes over Training (default 10)")
    p.add_argument("--width", type=at_least(1), default=16,
                   help="must match `train keypoints --width`")
    add_training_options(p, threads=1)

    p = command(verbs["eval"], "keypoints", "evaluate a keypoint model",
                "facecue eval keypoints --data ../shared/data/youtube-faces-68 --split test",
                _eval)
    p.add_argument("--data", required=True,
                   help="Kaggle-format CSV or a 68-point folder (like youtube-faces-68)")
    p.add_argument("--split", choices=["train", "val", "test", "all"],
                   help="rows to score (default: test when the data has an identity split, "
                        "else all)")
    p.add_argument("--model", help="ONNX file (default: the shipped model)")
    add_precision_option(p)
    p.add_argument("--limit", type=at_least(0), default=0, help="first N rows of the split only")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--plots", help="write a face grid with predicted/true keypoints here")

    p = command(verbs["ship"], "keypoints", "build the shipped model from training runs: "
                "their mean keypoints, int8; card with every member's record",
                "facecue ship keypoints runs/kp_p2_final_s0 runs/kp_p2_final_s1", _ship)
    p.add_argument("runs", nargs="+", help="run directories of `facecue train keypoints`")
    p.add_argument("--no-quantize", action="store_true", help="keep float32 weights")
    p.add_argument("--weights", default=None, help="target folder (default: facecue/weights)")

    p = command(verbs["label"], "pseudo", "label FER2013 Training faces with finished runs' "
                "mean keypoints: a Kaggle-format CSV to train a student on",
                f"facecue label pseudo runs/kp_a runs/kp_b --fer {FER} "
                "--out runs/fer_pseudo.csv.gz", _pseudo)
    p.add_argument("runs", nargs="+", help="run directories of `facecue train keypoints`")
    p.add_argument("--fer", required=True, help="fer2013.csv[.gz]")
    p.add_argument("--out", required=True, help="training.csv[.gz] to write")
    p.add_argument("--limit", type=at_least(0), default=0, help="first N Training faces only")

    p = command(verbs["label"], "blend", "relabel the train (and val) rows of a keypoints CSV "
                "as a blend of their own and finished runs' mean keypoints",
                f"facecue label blend runs/kp_a runs/kp_b --data {TRAIN} --splits train val "
                "--out runs/yt68_blend.csv.gz", _blend)
    p.add_argument("runs", nargs="+", help="run directories of `facecue train keypoints`")
    p.add_argument("--data", required=True, help="training.csv[.gz] with a Split column")
    p.add_argument("--splits", nargs="+", default=["train"], choices=["train", "val"],
                   help="rows to relabel (default train; val only for a final --with-val refit)")
    p.add_argument("--weight", type=float, default=0.5,
                   help="share of the rows' own keypoints (default 0.5)")
    p.add_argument("--out", required=True, help="training.csv[.gz] to write")

    p = command(verbs["submit"], "keypoints", "predict a Kaggle test.csv and write the "
                "submission", f"facecue submit keypoints --test test.csv --lookup "
                f"{KAGGLE}/IdLookupTable.csv.gz --out submission.csv", _submit)
    p.add_argument("--test", required=True, help="Kaggle test.csv[.gz] (ImageId, Image)")
    p.add_argument("--lookup", required=True, help="IdLookupTable.csv[.gz]")
    p.add_argument("--out", required=True, help="submission CSV (RowId,Location)")
    p.add_argument("--model", help="ONNX file (default: the shipped model)")
    add_precision_option(p)


def _train(args: argparse.Namespace) -> int:
    from facecue.train.keypoints import train_keypoints

    result = train_keypoints(
        args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        width=args.width, flip_prob=args.flip_prob, cutout_prob=args.cutout_prob,
        context_head=args.context_head, fine_heatmaps=args.fine_heatmaps, init=args.init,
        with_val=args.with_val, loss=args.loss, ema=args.ema, seed=args.seed,
        threads=args.threads, limit=args.limit, resume=args.resume, plots=args.plots)
    for split, m in result["metrics"].items():
        print(f"{split}: rmse_px96 {m['rmse_px96']:.3f} nme {m['nme']:.4f} n={m['n']}")
    return 0


def _train_backbone(args: argparse.Namespace) -> int:
    from facecue.train.backbone import pretrain_backbone

    run = pretrain_backbone(args.data, args.out, epochs=args.epochs, width=args.width,
                            seed=args.seed, threads=args.threads, limit=args.limit,
                            resume=args.resume)
    print(f"best PublicTest accuracy {run['best']:.4f} at epoch {run['best_epoch']}; "
          f"{args.out}/best.pt")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from facecue.evaluation.evaluate import evaluate_keypoints

    report = evaluate_keypoints(args.data, split=args.split, model=args.model,
                                precision=args.precision,
                                limit=args.limit, plots=args.plots)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    line = (f"{report['split']}: rmse_px96 {report['rmse_px96']:.3f} nme "
            f"{report['nme']:.4f} on n={report['n']}")
    if spread := report.get("interval_over_people"):
        line += (f" ({spread['people']} people; 95 % intervals when they are resampled: "
                 f"rmse_px96 {spread['rmse_px96'][0]:.3f}-{spread['rmse_px96'][1]:.3f}, "
                 f"nme {spread['nme'][0]:.4f}-{spread['nme'][1]:.4f})")
    print(line)
    return 0


def _ship(args: argparse.Namespace) -> int:
    from facecue.train.ship_keypoints import ship_keypoints

    card = ship_keypoints(args.runs, args.weights, quantize=not args.no_quantize)
    print(f"shipped keypoints15.onnx sha256 {card['sha256']}")
    return 0


def _pseudo(args: argparse.Namespace) -> int:
    from facecue.train.teacher import pseudo_label

    n = pseudo_label(args.runs, args.fer, args.out, limit=args.limit)
    print(f"{args.out}: {n} FER2013 Training faces with the runs' mean keypoints")
    return 0


def _blend(args: argparse.Namespace) -> int:
    from facecue.train.teacher import blend_labels

    n = blend_labels(args.runs, args.data, args.out, args.splits, args.weight)
    print(f"{args.out}: {n} rows ({', '.join(args.splits)}) relabelled")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from facecue.formats.kaggle_keypoints import make_submission

    n = make_submission(args.test, args.lookup, args.out, model=args.model,
                        precision=args.precision)
    print(f"{args.out}: {n} rows")
    return 0
