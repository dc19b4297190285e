"""Give the shipped int8 models the faster graph of :mod:`facecue.train.fastgraph`, in place.

    python scripts/speed_up_shipped_graphs.py [--shared ../shared]

Each shipped model still in the quantizer's form is rewritten, run beside the file it
replaces on real held-out crops (youtube-faces-68 ``test`` faces; FER2013 PrivateTest), and
kept only if every output is unchanged (the rewrite computes the same integers). The file is
replaced atomically and its card records the rewrite: this command, the previous sha256 and
the largest output change seen. Builds made since get the rewrite inside ``quantize_int8``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from facecue.fileio import atomic_write_bytes, atomic_write_json, file_sha256
from facecue.formats.fer2013 import read_fer2013
from facecue.formats.landmarks68 import convert_landmarks68, in_split, read_landmarks68
from facecue.train.fastgraph import speed_up_file
from facecue.vision.runtime import WEIGHTS, model_card, onnx_session, shipped_model_path

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python scripts/speed_up_shipped_graphs.py"
MAX_CHANGE = 1e-5  # float noise allowed in the outputs (the integers must be the same)


def outputs(path: Path, crops: np.ndarray) -> np.ndarray:
    session = onnx_session(path)
    x = crops.astype(np.float32)[:, None]
    return np.concatenate([session.run(None, {"pixels": x[i:i + 256]})[0]
                           for i in range(0, len(x), 256)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    args = ap.parse_args()
    shared = Path(args.shared) / "data"
    items = in_split(read_landmarks68(shared / "youtube-faces-68"), "test")
    fer, _ = read_fer2013(shared / "fer2013" / "fer2013.csv.gz")
    checks = {"keypoints15": (convert_landmarks68(items).images,
                              f"the {len(items)} youtube-faces-68 test faces"),
              **{name: (fer.split("PrivateTest").images, "the 3589 FER2013 PrivateTest faces")
                 for name in ("expression_fer7", "expression_fer5")}}
    for name, (crops, described) in checks.items():
        path = shipped_model_path(name)
        with tempfile.TemporaryDirectory() as tmp:
            new = Path(tmp) / path.name
            rewritten = speed_up_file(path, new)
            if not any(rewritten.values()):
                print(f"{name}: already rewritten")
                continue
            change = float(np.abs(outputs(new, crops) - outputs(path, crops)).max())
            if change > MAX_CHANGE:
                raise SystemExit(f"{name}: outputs changed by {change:g}; file left as it was")
            before = file_sha256(path)
            atomic_write_bytes(path, new.read_bytes())
        card = model_card(name)
        card["architecture"] += ("; graph rewritten by facecue.train.fastgraph (first conv + pool "
                                 "on a 2x2 space-to-depth, static shapes: the same int8 "
                                 "arithmetic, faster)")
        card["sha256"] = file_sha256(path)
        card["graph_rewrite"] = {"command": COMMAND, **rewritten, "sha256_before": before,
                                 "max_abs_output_change": change, "checked_on": described}
        atomic_write_json(Path(str(WEIGHTS / f"{name}.json")), card)
        print(f"{name}: {rewritten['stems']} first stage(s), {rewritten['static_shapes']} "
              f"shape target(s) rewritten; largest output change {change:g} on {described}")


if __name__ == "__main__":
    main()
