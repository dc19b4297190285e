"""PublicTest accuracy of combinations of expression training runs, each read on the face
alone or on the face and its mirror image: how the members of a shipped expression model are
chosen (never on PrivateTest).

    python scripts/select_expression_members.py --labels fer5 --runs runs/A runs/B ... \
        [--data ../shared/data/fer2013/fer2013.csv.gz] [--max-passes 4]
    python scripts/select_expression_members.py --labels ferplus8 --runs runs/A runs/B ... \
        --ferplus ../shared/data/ferplus/fer2013new.csv.gz


Each run's exported float ``model.onnx`` is read; a fer7 run serves fer5 through its five
classes, as in ``facecue ship expression``. Every way of giving each run 0, 1 (face) or 2
(face and mirror image) network passes, up to ``--max-passes`` per face in all, is scored;
printed best first, cost in passes beside each. ``ferplus8`` is scored as `facecue eval
expression` scores it: on PublicTest's rows with a clear FER+ majority, that majority the target.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from facecue.formats.fer2013 import read_fer2013
from facecue.formats.ferplus import load_ferplus
from facecue.labels import LABEL_SETS, class_columns
from facecue.vision.runtime import ExpressionModel

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", choices=sorted(LABEL_SETS), required=True)
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/fer2013/fer2013.csv.gz"))
    ap.add_argument("--ferplus", help="FER+ votes (fer2013new.csv[.gz]); ferplus8 only")
    ap.add_argument("--max-passes", type=int, default=4,
                    help="network passes per face (about 0.16 ms each, int8, 1 thread)")
    args = ap.parse_args()

    fer = read_fer2013(args.data)[0]
    if args.labels == "ferplus8":
        if not args.ferplus:
            ap.error("--labels ferplus8 needs --ferplus")
        rows = load_ferplus(fer, args.data, args.ferplus, None)[0].split("PublicTest")
        faces, targets, _ = rows.for_majority()
    else:
        faces, targets, _ = fer.split("PublicTest").for_labels(args.labels)
    mirrored = faces[:, :, ::-1].copy()
    probs = {}
    for run in args.runs:
        run_labels = json.loads((Path(run) / "history.json").read_text())["meta"]["labels"]
        model = ExpressionModel.load(run_labels, Path(run) / "model.onnx")
        cols = class_columns(run_labels, args.labels)
        probs[run] = []
        for x in (faces, mirrored):
            p = model.predict_proba(x)[:, cols]
            probs[run].append(p / p.sum(1, keepdims=True))
    scored = []
    for passes in itertools.product((0, 1, 2), repeat=len(args.runs)):
        if not 0 < sum(passes) <= args.max_passes:
            continue
        # a member's probability is the mean over its views, as in the shipped graph
        mean = sum(sum(probs[r][:k]) / k for r, k in zip(args.runs, passes, strict=True) if k)
        scored.append(((mean.argmax(1) == targets).mean(), sum(passes), passes))
    print(f"{args.labels} PublicTest, n={len(targets)}; 1 = face, 2 = face + mirror image")
    for acc, cost, passes in sorted(scored, key=lambda s: (-s[0], s[1])):
        print(f"  {acc:.4f} ({cost} passes): " + ", ".join(
            f"{Path(r).name}{' +mirror' if k == 2 else ''}"
            for r, k in zip(args.runs, passes, strict=True) if k))


if __name__ == "__main__":
    main()
