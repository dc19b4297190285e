"""The shipped int8 models with and without exact 8-bit products (``runtime.EXACT_INT8``).

    python benchmarks/bench_int8_exact.py [--shared ../shared]

On x86 CPUs without VNNI, onnxruntime's uint8 x int8 kernels saturate 16-bit sums unless the
session asks for exact products, which facecue does on such CPUs only
(``runtime.int8_session_config``). This prints, for this CPU, each shipped model's held-out
figure (keypoints: RMSE / NME on the youtube-faces-68 ``test`` people; expression: FER2013
PrivateTest accuracy) with the option and without it, beside the card's, the largest output
difference from the graph run unfused (dequantize, float op, quantize: what the file means),
and the median time of one face on one thread each way. On a CPU with VNNI the figures are
the same both ways, and the times say what the option would cost there.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import facecue.vision.runtime as runtime
from facecue.cpu import cpu_name, exact_int8
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


def ms_per_face(name: str, crops: np.ndarray, calls: int = 500) -> float:
    """Median milliseconds of one face through the model on one thread, as now configured."""
    session = runtime.onnx_session(runtime.shipped_model_path(name), threads=1)
    faces = crops.astype(np.float32)[:, None, None]
    times = []
    for i in range(calls + 50):
        t0 = time.perf_counter()
        session.run(None, {"pixels": faces[i % len(faces)]})
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times[50:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    args = ap.parse_args()
    data = Path(args.shared) / "data"
    items = in_split(read_landmarks68(data / "youtube-faces-68"), "test")
    rows = convert_landmarks68(items)
    fer_csv = data / "fer2013" / "fer2013.csv.gz"
    fer_crops = read_fer2013(fer_csv)[0].split("PrivateTest").images
    print(f"CPU: {cpu_name()}; onnxruntime {ort.__version__}; exact 8-bit products on this "
          f"CPU without asking (VNNI or not x86): {exact_int8()}")
    print(f"facecue asks for exact products here: {bool(runtime.int8_session_config())}")
    print("| model | figure | card | with the option | without it | largest output "
          "change from unfused, with / without | ms per face, with / without |")
    print("|---|---|---|---|---|---|---|")
    before = os.environ.get(runtime.EXACT_INT8_ENV)
    for name in ("keypoints15", "expression_fer7", "expression_fer5"):
        card = runtime.model_card(name)["metrics"]
        figures, changes, times = [], [], []
        for forced in ("1", "0"):
            os.environ[runtime.EXACT_INT8_ENV] = forced
            try:
                if name == "keypoints15":
                    r = evaluate_keypoints(rows, split="test", precision="int8")
                    figures.append(f"{r['rmse_px96']:.4f} / {r['nme']:.5f}")
                    changes.append(largest_change(name, rows.images))
                    times.append(ms_per_face(name, rows.images))
                else:
                    labels = name.split("_")[1]
                    r = evaluate_expression(fer_csv, labels=labels, split="PrivateTest",
                                            precision="int8")
                    figures.append(f"{r['accuracy']:.4f}")
                    changes.append(largest_change(name, fer_crops))
                    times.append(ms_per_face(name, fer_crops))
            finally:
                if before is None:
                    os.environ.pop(runtime.EXACT_INT8_ENV, None)
                else:
                    os.environ[runtime.EXACT_INT8_ENV] = before
        if name == "keypoints15":
            what = "RMSE px / NME, 314 held-out faces"
            want = f"{card['test']['rmse_px96']:.4f} / {card['test']['nme']:.5f}"
        else:
            what = "PrivateTest accuracy"
            want = f"{card['accuracy']:.4f}"
        print(f"| {name} | {what} | {want} | {figures[0]} | {figures[1]} | "
              f"{changes[0]:.3g} / {changes[1]:.3g} | {times[0]:.2f} / {times[1]:.2f} |")


if __name__ == "__main__":
    main()
