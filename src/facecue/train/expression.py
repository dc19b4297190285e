"""Train the FER2013 expression model: Training rows to learn, PublicTest to pick the epoch,
PrivateTest only to report (needs the ``train`` extra). ``ship_expression`` builds the
shipped model from finished runs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facecue.evaluation.evaluate import evaluate_expression
from facecue.fileio import atomic_write_json, file_sha256
from facecue.formats.fer2013 import read_fer2013
from facecue.labels import class_names
from facecue.provenance import current_command
from facecue.train.augment import augment_faces
from facecue.train.export import export_onnx
from facecue.train.loop import Batches, TrainConfig, fit, load_best, shuffled_batches
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


def train_expression(data: str, labels: str, out: str, *, epochs: int = 60,
                     batch_size: int = 128, lr: float = 0.05, width: int = 24, seed: int = 0,
                     threads: int = 2, limit: int = 0, resume: bool = False,
                     skip_bad_rows: bool = False, plots: bool = False) -> dict:
    """Train, keep the best PublicTest epoch, export ``model.onnx`` and write ``card.json``,
    which is returned. Resuming a finished run trains nothing and rebuilds the model, card
    and plots."""
    out_dir = Path(out)
    torch.manual_seed(seed)
    fer, report = read_fer2013(data, skip_bad=skip_bad_rows)
    if report.skipped:
        log.warning("%s: %s", data, report.summary())

    def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets, _ = fer.split(split).for_labels(labels)
        if limit:
            images, targets = images[:limit], targets[:limit]
        if len(images) == 0:
            raise ValueError(f"{data}: no {split} rows for label set {labels}")
        x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
        return x, torch.from_numpy(targets)

    train_x, train_y = tensors("Training")
    val_x, val_y = tensors("PublicTest")
    model = expression_net(len(class_names(labels)), width=width)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, threads=threads)
    command = current_command()
    run = fit(
        model,
        train_batches=augmented_batches(train_x, train_y, batch_size, seed),
        steps_per_epoch=len(train_x) // batch_size,
        loss_fn=lambda logits, y: F.cross_entropy(logits, y, label_smoothing=0.1),
        evaluate=lambda m: {"val_accuracy": accuracy(m, val_x, val_y)},
        select="val_accuracy", higher_is_better=True, out_dir=out_dir, config=config,
        resume=resume, meta={"task": "expression", "labels": labels, "width": width,
                             "data": str(data), "limit": limit, "command": command},
    )
    load_best(model, out_dir)
    onnx_path = out_dir / "model.onnx"
    export_onnx(model, 48, onnx_path, check_inputs=val_x[:16, 0].numpy().astype(np.uint8))
    test = evaluate_expression(data, labels=labels, split="PrivateTest", model=onnx_path,
                               limit=limit, skip_bad=skip_bad_rows,
                               plots=str(out_dir) if plots else None)
    n_params = sum(p.numel() for p in model.parameters())
    card = {
        "model": f"expression_{labels}",
        "task": "facial expression classification, 48x48 grayscale face crop",
        "labels": list(class_names(labels)),
        "architecture": f"VGG-style CNN, width {width}, {n_params} parameters; "
                        "input raw pixels 0..255, output logits",
        "data": {"file": Path(data).name, "train": "Training", "epoch_selection": "PublicTest",
                 "report": "PrivateTest", "train_rows": len(train_x), "val_rows": len(val_x)},
        "training_command": run["meta"]["command"],
        "seed": seed,
        "epochs": epochs,
        "best_epoch": run["best_epoch"],
        "val_accuracy_PublicTest": run["best"],
        "training_wall_time_minutes": round(run["seconds"] / 60, 1),
        "machine": "2 CPU cores, torch 2.13.0 CPU",
        "metrics": {"split": "PrivateTest", "accuracy": test["accuracy"], "n": test["n"],
                    "accuracy_without_training_duplicates": test["dedup"]["accuracy"],
                    "n_without_training_duplicates": test["dedup"]["n"],
                    "per_class": test["per_class"]},
        "file": "model.onnx",
        "sha256": file_sha256(onnx_path),
    }
    atomic_write_json(out_dir / "card.json", card)
    if plots:
        from facecue.evaluation.plots import plot_history

        plot_history(run["history"], out_dir / "training_curves.png",
                     [("train_loss", "train loss"), ("val_accuracy", "PublicTest accuracy")])
    log.info("PrivateTest accuracy %.4f (n=%d); model %s", test["accuracy"], test["n"], onnx_path)
    return card
