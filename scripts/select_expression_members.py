"""PublicTest accuracy of combinations of expression training runs, with and without the
mirror image: how the members of a shipped expression model are chosen (never on PrivateTest).

    python scripts/select_expression_members.py --labels fer5 --runs runs/A runs/B ... \
        [--data ../shared/data/fer2013/fer2013.csv.gz] [--max-members 4]

Each run's exported float ``model.onnx`` is read; a fer7 run serves fer5 through its five
classes, as in ``facecue expression ship``. Prints one line per combination, cost in network
passes per face (members x 2 with the mirror image) beside it.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from facecue.fer2013 import read_fer2013
from facecue.labels import LABEL_SETS, class_columns
from facecue.runtime import ExpressionModel

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", choices=sorted(LABEL_SETS), required=True)
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/fer2013/fer2013.csv.gz"))
    ap.add_argument("--max-members", type=int, default=4)
    args = ap.parse_args()

    faces, targets, _ = read_fer2013(args.data)[0].split("PublicTest").for_labels(args.labels)
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
    print(f"{args.labels} PublicTest, n={len(targets)}")
    for k in range(1, min(args.max_members, len(args.runs)) + 1):
        for combo in itertools.combinations(args.runs, k):
            plain = sum(probs[r][0] for r in combo)
            mirror = plain + sum(probs[r][1] for r in combo)
            print(f"  {' + '.join(Path(r).name for r in combo)}: "
                  f"{(plain.argmax(1) == targets).mean():.4f} ({k} passes), with mirror "
                  f"{(mirror.argmax(1) == targets).mean():.4f} ({2 * k} passes)")


if __name__ == "__main__":
    main()
