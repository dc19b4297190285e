"""Val figures of combinations of keypoint training runs: how the members of the shipped
keypoint model are chosen (on the 25 val identities; never on the held-out test identities).

    python scripts/select_keypoint_members.py --runs runs/A runs/B ... [--max-members 2]
        [--weights best|last|ema]

Each run's exported float ``keypoints15.onnx`` (its best epoch on val) is read and the
combination's keypoints are the mean of its members', as in ``facecue ship keypoints``.
``--weights last`` scores each run's last epoch instead (what a ``--with-val`` refit keeps),
``--weights ema`` its last weight average (``--ema`` runs); both need torch. Every run must
have been trained on data files with the same val rows. Prints one line per combination.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from facecue.evaluation.metrics import keypoint_report
from facecue.formats.kaggle_keypoints import read_training_csv
from facecue.vision.runtime import KeypointModel


def predict_run(run: Path, weights: str, images: np.ndarray) -> np.ndarray:
    if weights == "best":
        return KeypointModel.load(run / "keypoints15.onnx").predict(images)
    import torch

    from facecue.train.keypoints import net_options, predict
    from facecue.train.models import KeypointNet

    net = KeypointNet(**net_options(json.loads((run / "metrics.json").read_text())["meta"]))
    state = (torch.load(run / "last.pt", map_location="cpu", weights_only=False)["model"]
             if weights == "last" else torch.load(run / "ema.pt", map_location="cpu"))
    net.load_state_dict(state)
    return predict(net.eval(), images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--max-members", type=int, default=2)
    ap.add_argument("--weights", choices=["best", "last", "ema"], default="best")
    args = ap.parse_args()

    files = sorted({json.loads((Path(r) / "metrics.json").read_text())["meta"]["data"]
                    for r in args.runs})
    vals = [read_training_csv(f).split("val") for f in files]
    val = vals[0]
    if any(not (np.array_equal(v.images, val.images)
                and np.array_equal(v.keypoints, val.keypoints, equal_nan=True)) for v in vals):
        raise SystemExit(f"the runs' data files hold different val rows: {files}")
    points = {r: predict_run(Path(r), args.weights, val.images) for r in args.runs}
    print(f"val, n={len(val)}, {args.weights} weights")
    for k in range(1, min(args.max_members, len(args.runs)) + 1):
        for combo in itertools.combinations(args.runs, k):
            report = keypoint_report(sum(points[r] for r in combo) / k, val.keypoints)
            print(f"  {' + '.join(Path(r).name for r in combo)}: RMSE "
                  f"{report['rmse_px96']:.3f}, NME {report['nme']:.5f}")


if __name__ == "__main__":
    main()
