"""Every way to run each shipped model on this CPU, side by side in one run: accuracy on its
held-out split and milliseconds per face on one thread.

    python benchmarks/bench_precision.py [--shared ../shared] [--rounds 7]

For each model (keypoints: RMSE / NME on the 314 youtube-faces-68 ``test`` faces;
expression: FER2013 PrivateTest accuracy):

- ``int8, exact products``: the int8 build with ``session.x64quantprecision`` (what facecue
  runs on x86 without VNNI);
- ``int8, as is``: the same file without the option (what it costs, and on x86 without VNNI
  what saturation does to the figures);
- ``float32``: the float32 build (``NAME.float32.onnx``);
- ``int8, 7-bit weights``: the int8w7 build (``NAME.int8w7.onnx``, what facecue runs on x86
  without VNNI), without the option: with weights in -64..63 a pair of uint8 x int8 products
  cannot pass the 16-bit sum (2 x 255 x 64 = 32,640), so the fast kernel is exact on every x86
  CPU; the row says what the lost bit costs in accuracy.

The times are interleaved: ``--rounds`` rounds, each timing every variant for 100 calls, and
the median of all calls is printed, so a machine that speeds up or slows down during the run
moves every variant alike. The CPU is named in the first line.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from facecue.cpu import cpu_name
from facecue.evaluation.evaluate import evaluate_expression, evaluate_keypoints
from facecue.fileio import atomic_write_json
from facecue.formats.fer2013 import read_fer2013
from facecue.formats.landmarks68 import convert_landmarks68, in_split, read_landmarks68
from facecue.vision.runtime import (
    EXACT_INT8,
    EXACT_INT8_ENV,
    model_card,
    precision_choice,
    shipped_model_path,
)

REPO = Path(__file__).resolve().parents[1]
CALLS = 100  # per variant per round


def session(path: Path, exact: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    for key, value in (EXACT_INT8 if exact else {}).items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def figure(name: str, path: Path, exact: bool, rows, fer_csv: Path) -> str:
    """The held-out figure of the file at ``path``, run with or without the option."""
    before = os.environ.get(EXACT_INT8_ENV)
    os.environ[EXACT_INT8_ENV] = "1" if exact else "0"
    try:
        if name == "keypoints15":
            r = evaluate_keypoints(rows, split="test", model=path)
            return f"{r['rmse_px96']:.4f} / {r['nme']:.5f}"
        r = evaluate_expression(fer_csv, labels=name.split("_")[1], split="PrivateTest",
                                model=path)
        return f"{r['accuracy']:.4f}"
    finally:
        if before is None:
            os.environ.pop(EXACT_INT8_ENV, None)
        else:
            os.environ[EXACT_INT8_ENV] = before


def interleaved_ms(sessions: dict[str, ort.InferenceSession], crops: np.ndarray,
                   rounds: int) -> dict[str, float]:
    """Median ms of one face per call for each session, timed round-robin."""
    faces = crops.astype(np.float32)[:, None, None]
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for s in sessions.values():  # warm-up
        for i in range(20):
            s.run(None, {"pixels": faces[i]})
    for _ in range(rounds):
        for key, s in sessions.items():
            for i in range(CALLS):
                t0 = time.perf_counter()
                s.run(None, {"pixels": faces[i % len(faces)]})
                times[key].append(time.perf_counter() - t0)
    return {k: 1000 * float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/precision.json"))
    args = ap.parse_args()
    data = Path(args.shared) / "data"
    rows = convert_landmarks68(in_split(read_landmarks68(data / "youtube-faces-68"), "test"))
    fer_csv = data / "fer2013" / "fer2013.csv.gz"
    fer_crops = read_fer2013(fer_csv)[0].split("PrivateTest").images
    print(f"CPU: {cpu_name()}; onnxruntime {ort.__version__}; facecue's choice here: "
          f"{precision_choice()}")
    print("| model | figure | card (int8) | variant | figure here | ms per face, 1 thread |")
    print("|---|---|---|---|---|---|")
    results: dict = {"cpu": cpu_name(), "choice": precision_choice(), "models": {}}
    for name in ("keypoints15", "expression_fer7", "expression_fer5"):
        int8 = shipped_model_path(name)
        variants = {"int8, exact products": (int8, True), "int8, as is": (int8, False),
                    "float32": (shipped_model_path(name, "float32"), False),
                    "int8, 7-bit weights": (shipped_model_path(name, "int8w7"), False)}
        crops = rows.images if name == "keypoints15" else fer_crops
        ms = interleaved_ms({k: session(p, e) for k, (p, e) in variants.items()}, crops,
                            args.rounds)
        card = model_card(name)["metrics"]
        if name == "keypoints15":
            what = "RMSE px / NME"
            want = f"{card['test']['rmse_px96']:.4f} / {card['test']['nme']:.5f}"
        else:
            what, want = "PrivateTest accuracy", f"{card['accuracy']:.4f}"
        results["models"][name] = {}
        for key, (path, exact) in variants.items():
            got = figure(name, path, exact, rows, fer_csv)
            results["models"][name][key] = {"figure": got, "ms_per_face": ms[key]}
            print(f"| {name} | {what} | {want} | {key} | {got} | {ms[key]:.2f} |")
    atomic_write_json(args.out, results)


if __name__ == "__main__":
    main()
