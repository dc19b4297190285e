"""The ``facecue`` command line. Each command imports its module lazily, so commands that need
no extras (``run``, ``analyze``, ``eval``) work without torch or the speech packages."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="facecue", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model (needs facecue[train])")
    train_sub = train.add_subparsers(dest="task", required=True)
    evaluate = sub.add_parser("eval", help="evaluate a model on labelled data")
    eval_sub = evaluate.add_subparsers(dest="task", required=True)

    _add_expression_parsers(train_sub, eval_sub)

    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"facecue: error: {e}", file=sys.stderr)
        return 2


# --- expression (FER2013) ---------------------------------------------------------------


def _add_expression_parsers(train_sub, eval_sub) -> None:
    p = train_sub.add_parser("expression", help="train the FER2013 expression model")
    p.add_argument("--labels", choices=["fer5", "fer7"], default="fer7")
    p.add_argument("--data", required=True, help="fer2013.csv[.gz] or icml_face_data.csv")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, model)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--width", type=int, default=24, help="channels of the first conv stage")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="use only N rows per split (smoke runs)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument("--plots", action="store_true", help="write training-curve PNGs")
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


def _cmd_train_expression(args) -> int:
    from facecue.train_expression import train_expression

    train_expression(**{k: v for k, v in vars(args).items()
                        if k not in ("command", "task", "handler")})
    return 0


def _cmd_eval_expression(args) -> int:
    import json

    from facecue.evaluate import evaluate_expression

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


if __name__ == "__main__":
    sys.exit(main())
