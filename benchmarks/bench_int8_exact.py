"""The shipped int8 models with and without exact 8-bit products (``runtime.EXACT_INT8``).

    python benchmarks/bench_int8_exact.py [--shared ../shared]

On x86 CPUs without VNNI, onnxruntime's uint8 x int8 kernels saturate 16-bit sums unless the
session asks for exact products, which facecue always does. This prints, for this CPU, each
shipped model's held-out figure (keypoints: RMSE / NME on the youtube-faces-68 ``test``
people; expression: FER2013 PrivateTest accuracy) with the option and without it, beside the
card's, and the largest output difference from the graph run unfused (dequantize, float op,
quantize: what the file means). On a CPU with VNNI both columns are the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort

import facecue.vision.runtime as runtime
from facecue.cpu import exact_int8
from facecue.evaluation.evaluate import evaluate_expression, evaluate_keypoints
from facecue.formats.fer2013 import read_fer2013
from facecue.formats.landmarks68 import convert_landmarks68, in_split, read_landmarks68

REPO = Path(__file__).resolve().parents[1]


def largest_change(name: str, crops: np.ndarray) -> float:
    """Largest output difference of the fused graph (as now configured) from the unfused."""
    unfused = ort.SessionOptions()
    unfused.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    path = runtime.shipped_model_path(name)
    x = {"pixels": crops.astype(np.float32)[:, None]}
    want = runtime.onnx_session(path, options=unfused).run(None, x)[0]
    return float(np.abs(runtime.onnx_session(path).run(None, x)[0] - want).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    args = ap.parse_args()
    data = Path(args.shared) / "data"
    items = in_split(read_landmarks68(data / "youtube-faces-68"), "test")
    rows = convert_landmarks68(items)
    fer_csv = data / "fer2013" / "fer2013.csv.gz"
    fer_crops = read_fer2013(fer_csv)[0].split("PrivateTest").images
    print(f"onnxruntime {ort.__version__}; exact 8-bit products on this CPU without asking "
          f"(VNNI or not x86): {exact_int8()}")
    print("| model | figure | card | exact (facecue) | without the option | largest output "
          "change from unfused, exact / without |")
    print("|---|---|---|---|---|---|")
    exact = dict(runtime.EXACT_INT8)
    for name in ("keypoints15", "expression_fer7", "expression_fer5"):
        card = runtime.model_card(name)["metrics"]
        figures, changes = [], []
        for config in (exact, {}):
            runtime.EXACT_INT8 = config
            try:
                if name == "keypoints15":
                    r = evaluate_keypoints(rows, split="test")
                    figures.append(f"{r['rmse_px96']:.4f} / {r['nme']:.5f}")
                    changes.append(largest_change(name, rows.images))
                else:
                    labels = name.split("_")[1]
                    r = evaluate_expression(fer_csv, labels=labels, split="PrivateTest")
                    figures.append(f"{r['accuracy']:.4f}")
                    changes.append(largest_change(name, fer_crops))
            finally:
                runtime.EXACT_INT8 = exact
        if name == "keypoints15":
            what = "RMSE px / NME, 314 held-out faces"
            want = f"{card['test']['rmse_px96']:.4f} / {card['test']['nme']:.5f}"
        else:
            what = "PrivateTest accuracy"
            want = f"{card['accuracy']:.4f}"
        print(f"| {name} | {what} | {want} | {figures[0]} | {figures[1]} | "
              f"{changes[0]:.3g} / {changes[1]:.3g} |")


if __name__ == "__main__":
    main()
