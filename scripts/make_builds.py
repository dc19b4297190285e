"""Ship the other builds of every shipped int8 model beside it, each with its own card: the
float32 build and the int8 build with 7-bit weights (:data:`facecue.train.ship.OTHER_BUILDS`).

    python scripts/make_builds.py [--shared ../shared]

New models get these builds from the ship commands themselves (``ship_onnx``); this does the
same for the models shipped before, whose training runs are not in the checkout: each
``NAME.BUILD.onnx`` is made from ``NAME.onnx`` (:mod:`facecue.train.builds`), and its card is
the int8 card with every figure measured again on the new file, on the same splits: FER2013
PublicTest and PrivateTest for the expression models, the held-out youtube-faces-68
identities (``test``) for the keypoints. The float32 card also gives the same figures with the
weights stored as float32 instead of float16 (the size saving costs nothing if they agree);
the 7-bit card, the largest output difference on those faces between running the file with
and without onnxruntime's exact-products option on the CPU at hand (0 where the fast kernel
is exact, as it must be on x86 without VNNI).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from facecue.cpu import cpu_name, int8_reason
from facecue.evaluation.evaluate import evaluate_expression, evaluate_keypoints
from facecue.formats.fer2013 import read_fer2013
from facecue.formats.landmarks68 import convert_landmarks68, in_split, read_landmarks68
from facecue.train.builds import exact_option_change, float_twin_file
from facecue.train.ship import ship_build
from facecue.vision.runtime import WEIGHTS, model_card

COMMAND = "python scripts/make_builds.py"
REPO = Path(__file__).resolve().parents[1]


def expression_figures(fer_csv: Path, labels: str):
    def figures(path: Path) -> dict:
        val = evaluate_expression(fer_csv, labels=labels, split="PublicTest", model=path)
        test = evaluate_expression(fer_csv, labels=labels, split="PrivateTest", model=path)
        return {"val_accuracy_PublicTest": val["accuracy"],
                "metrics": {"split": "PrivateTest", "accuracy": test["accuracy"],
                            "n": test["n"],
                            "accuracy_without_training_duplicates": test["dedup"]["accuracy"],
                            "n_without_training_duplicates": test["dedup"]["n"],
                            "per_class": test["per_class"]}}
    return figures, lambda card: card["metrics"]["accuracy"]


def keypoint_figures(shared: Path):
    rows = convert_landmarks68(in_split(read_landmarks68(shared / "youtube-faces-68"), "test"))

    def figures(path: Path) -> dict:
        m = evaluate_keypoints(rows, split="test", model=path)
        return {"metrics": {"test": {k: m[k] for k in ("n", "rmse_px96", "nme", "nme_n",
                                                       "mean_point_error_px96",
                                                       "per_keypoint")}},
                "metrics_note": "test = held-out identities never used for training or any "
                                "choice (the int8 card's val_trained_on figures are not "
                                "remeasured: the prepared training file is not in the "
                                "checkout)"}
    return figures, lambda card: card["metrics"]["test"]["nme"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    args = ap.parse_args()
    data = Path(args.shared) / "data"
    fer_csv = data / "fer2013" / "fer2013.csv.gz"
    jobs = {"expression_fer7": expression_figures(fer_csv, "fer7"),
            "expression_fer5": expression_figures(fer_csv, "fer5"),
            "keypoints15": keypoint_figures(data)}
    crops = {"keypoints15": convert_landmarks68(
        in_split(read_landmarks68(data / "youtube-faces-68"), "test")).images,
        **dict.fromkeys(("expression_fer7", "expression_fer5"),
                        read_fer2013(fer_csv)[0].split("PrivateTest").images)}
    weights = Path(str(WEIGHTS))
    for name, (figures, headline) in jobs.items():
        int8_card = model_card(name)
        with tempfile.TemporaryDirectory() as tmp:  # the same weights stored as float32
            wide = Path(tmp) / f"{name}.float32.onnx"
            float_twin_file(weights / f"{name}.onnx", wide, weights="float32")
            check = {"headline": headline(figures(wide)), "size_bytes": wide.stat().st_size,
                     "note": "the same build with its weights stored as float32"}
        card = ship_build(
            name, "float32", weights, lambda p, c=int8_card, f=figures, k=check:
            c | f(p) | {"weights_stored_as_float32": k}, COMMAND)
        seven = ship_build(
            name, "int8w7", weights, lambda p, c=int8_card, f=figures, n=name:
            c | f(p) | {"exact_without_option": {
                "max_abs_output_change": exact_option_change(p, crops[n]), "cpu": cpu_name(),
                "why": int8_reason(),
                "note": "outputs with and without session.x64quantprecision on the held-out "
                        "faces, on the CPU that built the file"}}, COMMAND)
        print(f"{name}: int8 {headline(int8_card):.4f}; float32 {headline(card):.4f} "
              f"(float32-stored weights {check['headline']:.4f}); int8w7 {headline(seven):.4f}, "
              f"output change without the option "
              f"{seven['exact_without_option']['max_abs_output_change']:g}")


if __name__ == "__main__":
    main()
