"""Build a shipped expression model from finished training runs (needs the ``train`` extra).

One ONNX graph averages the class probabilities of every member run, each read on the face
alone or on the face and its mirror image; a ``fer7`` run can serve a ``fer5`` model through
its five matching classes.
The graph is then quantized to int8 (static, calibrated on Training rows), which makes it about
three times faster, so two members and the mirror image still fit the 1 ms budget per face.
The card records every member's training command, seed and wall time, the PublicTest accuracy
the members were chosen on and the PrivateTest figures, measured on the shipped file itself.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from facecue.evaluation.evaluate import evaluate_expression
from facecue.formats.fer2013 import read_fer2013
from facecue.formats.ferplus import check_ferplus_options
from facecue.labels import LABEL_SETS, class_columns, class_names
from facecue.train.export import calibration_rows
from facecue.train.loop import finished_run, load_best
from facecue.train.models import expression_net
from facecue.train.ship import build_record, ship_onnx

log = logging.getLogger(__name__)


class ExpressionEnsemble(torch.nn.Module):
    """Members' probabilities for ``labels``, averaged over members; a member with
    ``mirror[i]`` set gives the mean of its reading of the face and of the mirrored face.
    Outputs log-probabilities, so the runtime's softmax gives the averaged probabilities."""

    def __init__(self, members: list[torch.nn.Module], columns: list[list[int]],
                 mirror: list[bool]) -> None:
        super().__init__()
        if len(mirror) != len(members):
            raise ValueError("one mirror flag per member")
        self.members = torch.nn.ModuleList(members)
        self.columns = columns
        self.mirror = mirror

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        both = torch.cat([x, x.flip(-1)]) if any(self.mirror) else x
        total = 0.0
        for member, cols, mirror in zip(self.members, self.columns, self.mirror, strict=True):
            p = torch.softmax(member(both if mirror else x), 1)[:, cols]
            p = p / p.sum(1, keepdim=True)
            total = total + ((p[:n] + p[n:]) / 2 if mirror else p)
        return torch.log(total / len(self.members) + 1e-12)


def load_member(run: str | Path, labels: str) -> tuple[torch.nn.Module, list[int], dict]:
    """A finished run's best network, the output columns that give ``labels``, its card."""
    run = finished_run(run, ("best.pt", "card.json", "history.json"), "train expression")
    card = json.loads((run / "card.json").read_text())
    meta = json.loads((run / "history.json").read_text())["meta"]
    try:
        columns = class_columns(meta["labels"], labels)
    except ValueError as e:
        raise ValueError(f"{run}: {e}") from None
    net = expression_net(len(LABEL_SETS[meta["labels"]][1]), width=meta["width"])
    return load_best(net, run), columns, card


def ship_expression(runs: list[str | Path], labels: str, data: str,
                    weights_dir: str | Path | None = None, *, mirror: bool = True,
                    mirror_only: list[str | Path] | None = None, quantize: bool = True,
                    ferplus: str | Path | None = None, provenance: str | Path | None = None
                    ) -> dict:
    """Build ``expression_<labels>.onnx`` from ``runs`` into ``weights_dir`` (None: the
    package's weights folder) with its card, and return the card. Every run is read also on
    the mirror image (``mirror``), none (``mirror=False``), or only the runs ``mirror_only``
    names, which must be among ``runs``. ``ferplus8`` is scored on the FER+ votes of
    ``ferplus`` (and ``provenance``: :func:`facecue.evaluation.evaluate.evaluate_expression`)."""
    if not runs:
        raise ValueError("name at least one training run")
    check_ferplus_options(labels, ferplus, False)
    flags = _mirror_flags(runs, mirror, mirror_only)
    loaded = [load_member(r, labels) for r in runs]
    model = ExpressionEnsemble([m for m, _, _ in loaded], [c for _, c, _ in loaded], flags)
    fer, _ = read_fer2013(data)
    val_images = fer.split("PublicTest").for_labels(labels)[0]
    train_images = fer.split("Training").for_labels(labels)[0]
    quantization = ({"type": "int8 static, QDQ, per-channel weights",
                     "calibration": f"{len(calibration_rows(len(train_images)))} "
                                    "Training rows, numpy seed 0"}
                    if quantize else None)

    def describe(path: Path, parity: float) -> dict:
        val, test = (evaluate_expression(data, labels=labels, split=split, model=path,
                                         ferplus=ferplus, provenance=provenance)
                     for split in ("PublicTest", "PrivateTest"))
        log.info("expression_%s: PublicTest %.4f, PrivateTest %.4f (n=%d)", labels,
                 val["accuracy"], test["accuracy"], test["n"])
        return _card(labels, runs, loaded, model, flags, quantization, parity, val, test, data)

    return ship_onnx(model, f"expression_{labels}", weights_dir, size=48,
                     check_inputs=val_images[:16],
                     calibration=train_images if quantize else None, describe=describe)


def _mirror_flags(runs: list[str | Path], mirror: bool,
                  mirror_only: list[str | Path] | None) -> list[bool]:
    """Per run: is it read also on the mirror image."""
    if mirror_only is None:
        return [mirror] * len(runs)
    if not mirror:
        raise ValueError("mirror_only names runs to read on the mirror image, but mirror is off")
    chosen = {Path(r) for r in mirror_only}
    if unknown := chosen - {Path(r) for r in runs}:
        raise ValueError(f"mirror_only names runs not being shipped: {sorted(map(str, unknown))}")
    return [Path(run) in chosen for run in runs]


def _card(labels, runs, loaded, model, mirror, quantization, parity, val, test, data) -> dict:
    members = [{"run": str(run), "mirror": flag, "labels": card["labels"],
                "architecture": card["architecture"],
                "training_command": card["training_command"], "seed": card["seed"],
                "epochs": card["epochs"], "best_epoch": card["best_epoch"],
                "val_accuracy_PublicTest": card["val_accuracy_PublicTest"],
                "training_wall_time_minutes": card["training_wall_time_minutes"]}
               for run, (_, _, card), flag in zip(runs, loaded, mirror, strict=True)]
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "model": f"expression_{labels}",
        "task": "facial expression classification, 48x48 grayscale face crop",
        "labels": list(class_names(labels)),
        "architecture": (f"mean class probability of {len(members)} VGG-style CNN(s) "
                         f"({n_params} parameters in all)"
                         + (" on the face and its mirror image" if all(mirror) else
                            f" ({sum(mirror)} of them also on the mirror image)" if any(mirror)
                            else "")
                         + ("; int8 static quantization" if quantization else "")
                         + "; input raw pixels 0..255, output log-probabilities"),
        "members": members,
        "test_time_mirror": mirror,
        "quantization": quantization,
        **build_record(parity, {"file": Path(data).name, "train": "Training",
                                "selection": "PublicTest (epochs within each run; members "
                                             "and options)",
                                "report": "PrivateTest"}),
        "training_command": [m["training_command"] for m in members],
        "seed": [m["seed"] for m in members],
        "training_wall_time_minutes": round(sum(m["training_wall_time_minutes"]
                                                for m in members), 1),
        "training_wall_time_note": "sum over members, each trained on 1 thread; on 2 cores "
                                   "two members train at once",
        "machine": "2 CPU cores, torch 2.13.0 CPU",
        "val_accuracy_PublicTest": val["accuracy"],
        "metrics": {"split": "PrivateTest", "accuracy": test["accuracy"], "n": test["n"],
                    "accuracy_without_training_duplicates": test["dedup"]["accuracy"],
                    "n_without_training_duplicates": test["dedup"]["n"],
                    "per_class": test["per_class"]},
        "file": f"expression_{labels}.onnx",
    } | ({} if "cross_entropy_to_votes" not in test else _votes_record(val, test))


def _votes_record(val: dict, test: dict) -> dict:
    """What a FER+ card adds: the rule for the majority, the rows left out, and how well the
    probabilities match the votes, per split."""
    return {"ferplus": {"majority_rule": test["majority_rule"],
                        "left_out": {"PublicTest": val["left_out"],
                                     "PrivateTest": test["left_out"]},
                        "cross_entropy_to_votes": {
                            "PublicTest": val["cross_entropy_to_votes"],
                            "PrivateTest": test["cross_entropy_to_votes"]},
                        "accuracy_interval95_PrivateTest": test["accuracy_interval95"]}}
