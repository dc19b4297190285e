"""Train the FER2013 expression model: Training rows to learn, PublicTest to pick the epoch,
PrivateTest only to report (needs the ``train`` extra); ferplus8 on the same splits with the
FER+ votes as targets. ``ship_expression`` builds the shipped model from finished runs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facecue.evaluation.evaluate import evaluate_expression
from facecue.fileio import atomic_write_json, file_sha256
from facecue.formats.fer2013 import read_fer2013
from facecue.formats.ferplus import (
    FerPlus,
    check_ferplus_options,
    load_ferplus,
    vote_distribution,
)
from facecue.labels import class_names
from facecue.provenance import current_command
from facecue.train.augment import augment_faces
from facecue.train.export import export_onnx
from facecue.train.loop import Batches, TrainConfig, fit, load_best, shuffled_batches
from facecue.train.losses import soft_cross_entropy
from facecue.train.models import expression_net

log = logging.getLogger(__name__)


def augmented_batches(images: torch.Tensor, targets: torch.Tensor, batch_size: int,
                      seed: int) -> Batches:
    """Epoch -> shuffled batches of warped, mirrored, lit and cut-out faces (per-epoch seed)."""
    def epoch_batches(epoch: int):
        gen, batches = shuffled_batches(len(images), batch_size, seed, epoch)
        for idx in batches:
            yield augment_faces(images[idx], gen), targets[idx]
    return epoch_batches


def accuracy(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor) -> float:
    """The share of ``images`` whose top class is the target."""
    correct = 0
    for i in range(0, len(images), 512):
        correct += int((model(images[i:i + 512]).argmax(1) == targets[i:i + 512]).sum())
    return correct / max(1, len(images))


def vote_metrics(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor,
                 votes: torch.Tensor) -> dict[str, float]:
    """Majority-vote accuracy and mean cross-entropy to the vote distributions ``votes``."""
    correct, ce = 0, 0.0
    for i in range(0, len(images), 512):
        logits = model(images[i:i + 512])
        correct += int((logits.argmax(1) == targets[i:i + 512]).sum())
        ce += float(soft_cross_entropy(logits, votes[i:i + 512])) * len(logits)
    n = max(1, len(images))
    return {"val_accuracy": correct / n, "val_cross_entropy_to_votes": ce / n}


TARGETS = ("soft", "majority")  # ferplus8 training targets


def _ferplus_split(plus: FerPlus, split: str, soft: bool
                   ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...], dict[str, int]]:
    """Images, targets, extra arrays and the rows left out, by reason, of one FER+ split:
    with ``soft`` the vote distributions of the rows with an emotion vote, else the
    clear-majority emotions with the vote distributions beside them (to score
    cross-entropy to the votes)."""
    rows = plus.split(split)
    if soft:
        images, targets, keep = rows.for_votes()
        extra, left = (), {"no_emotion_votes": int((~keep).sum())}
    else:
        images, targets, keep = rows.for_majority()
        extra, left = (vote_distribution(rows.votes[keep]),), rows.left_out()
    log.info("FER+ %s: %d of %d rows kept (left out: %s)", split, len(images), len(rows),
             ", ".join(f"{why} {n}" for why, n in left.items()))
    return images, targets, extra, left


def train_expression(data: str, labels: str, out: str, *, epochs: int = 60,
                     batch_size: int = 128, lr: float = 0.05, width: int = 24, seed: int = 0,
                     threads: int = 2, limit: int = 0, resume: bool = False,
                     skip_bad_rows: bool = False, plots: bool = False,
                     ferplus: str | None = None, provenance: str | None = None,
                     target: str = "soft", report: bool = True) -> dict:
    """Train, keep the best PublicTest epoch, export ``model.onnx`` and write ``card.json``,
    which is returned; ``report=False`` (an exploration run) leaves PrivateTest unscored.
    Resuming a finished run trains nothing and rebuilds the model, card and plots.

    ``ferplus8`` learns from the FER+ votes of ``ferplus``: ``target="soft"`` is the vote
    distribution (cross-entropy to it; rows without an emotion vote left out), ``"majority"``
    the clear-majority emotion of the rows that have one (the loss of the fer5/fer7 runs).
    Either way the epoch is chosen by PublicTest majority-vote accuracy."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    check_ferplus_options(labels, ferplus, skip_bad_rows)
    out_dir = Path(out)
    torch.manual_seed(seed)
    fer, read = read_fer2013(data, skip_bad=skip_bad_rows)
    if read.skipped:
        log.warning("%s: %s", data, read.summary())
    plus, left_out = None, {}
    if ferplus is not None:
        plus, join = load_ferplus(fer, data, ferplus, provenance)
        log.info("%s", join.summary())

    def tensors(split: str, soft: bool = False) -> tuple[torch.Tensor, ...]:
        """Images and targets of ``split`` (:func:`_ferplus_split` for ferplus8)."""
        if plus is None:
            images, targets, _ = fer.split(split).for_labels(labels)
            extra = ()
        else:
            images, targets, extra, left_out[split] = _ferplus_split(plus, split, soft)
        if limit:
            images, targets = images[:limit], targets[:limit]
            extra = tuple(e[:limit] for e in extra)
        if len(images) == 0:
            raise ValueError(f"{data}: no {split} rows for label set {labels}")
        x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
        y = torch.from_numpy(targets.astype(np.float32) if soft else targets)
        return (x, y, *(torch.from_numpy(e.astype(np.float32)) for e in extra))

    train_x, train_y, *_ = tensors("Training", soft=plus is not None and target == "soft")
    val = tensors("PublicTest")
    if plus is None:
        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            return {"val_accuracy": accuracy(m, val[0], val[1])}
    else:
        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            return vote_metrics(m, *val)
    if train_y.dtype.is_floating_point:
        loss_fn = soft_cross_entropy
    else:
        def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, y, label_smoothing=0.1)
    model = expression_net(len(class_names(labels)), width=width)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, threads=threads)
    command = current_command()
    meta = {"task": "expression", "labels": labels, "width": width, "data": str(data),
            "limit": limit, "command": command}
    if plus is not None:
        meta |= {"ferplus": str(ferplus), "target": target}
    run = fit(
        model,
        train_batches=augmented_batches(train_x, train_y, batch_size, seed),
        steps_per_epoch=len(train_x) // batch_size, loss_fn=loss_fn, evaluate=evaluate,
        select="val_accuracy", higher_is_better=True, out_dir=out_dir, config=config,
        resume=resume, meta=meta, same=("labels", "width", "target"),
    )
    load_best(model, out_dir)
    onnx_path = out_dir / "model.onnx"
    export_onnx(model, 48, onnx_path, check_inputs=val[0][:16, 0].numpy().astype(np.uint8))
    test = evaluate_expression(data, labels=labels, split="PrivateTest", model=onnx_path,
                               limit=limit, skip_bad=skip_bad_rows,
                               plots=str(out_dir) if plots else None, ferplus=ferplus,
                               provenance=provenance) if report else None
    n_params = sum(p.numel() for p in model.parameters())
    card = {
        "model": f"expression_{labels}",
        "task": "facial expression classification, 48x48 grayscale face crop",
        "labels": list(class_names(labels)),
        "architecture": f"VGG-style CNN, width {width}, {n_params} parameters; "
                        "input raw pixels 0..255, output logits",
        "data": {"file": Path(data).name, "train": "Training", "epoch_selection": "PublicTest",
                 "report": "PrivateTest", "train_rows": len(train_x), "val_rows": len(val[0])},
        "training_command": run["meta"]["command"],
        "seed": seed,
        "epochs": epochs,
        "best_epoch": run["best_epoch"],
        "val_accuracy_PublicTest": run["best"],
        "training_wall_time_minutes": round(run["seconds"] / 60, 1),
        "machine": "2 CPU cores, torch 2.13.0 CPU",
        "metrics": {"split": "PrivateTest", "accuracy": test["accuracy"], "n": test["n"],
                    "accuracy_interval95": test["accuracy_interval95"],
                    "accuracy_without_training_duplicates": test["dedup"]["accuracy"],
                    "n_without_training_duplicates": test["dedup"]["n"],
                    "per_class": test["per_class"]} if test else
                   {"split": None, "note": "PrivateTest not scored (--no-report: exploration)"},
        "file": "model.onnx",
        "sha256": file_sha256(onnx_path),
    }
    if plus is not None:
        card["data"] |= {"ferplus_file": Path(ferplus).name, "target": target,
                         "left_out": left_out}
        if test:
            card["data"] |= {"provenance": test["provenance"] and Path(test["provenance"]).name,
                             "majority_rule": test["majority_rule"]}
            card["metrics"] |= {"cross_entropy_to_votes": test["cross_entropy_to_votes"],
                                "left_out": test["left_out"]}
    atomic_write_json(out_dir / "card.json", card)
    if plots:
        from facecue.evaluation.plots import plot_history

        plot_history(run["history"], out_dir / "training_curves.png",
                     [("train_loss", "train loss"), ("val_accuracy", "PublicTest accuracy")])
    if test:
        log.info("PrivateTest accuracy %.4f (n=%d); model %s", test["accuracy"], test["n"],
                 onnx_path)
    return card
