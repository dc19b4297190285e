"""Train the 15-keypoint regressor on Kaggle-format 96x96 crops (PyTorch; ``train`` extra).

Rows with missing keypoints still train the keypoints they have (masked loss); the crops are
augmented with their keypoints (:func:`facecue.train.augment.augment_keypoints`). A run is
scored on val only; ``ship_keypoints`` builds the shipped model from finished runs and scores
the held-out test identities.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from facecue.evaluation.evaluate import evaluate_keypoints
from facecue.evaluation.metrics import keypoint_report
from facecue.fileio import atomic_write_json, file_sha256
from facecue.formats.kaggle_keypoints import KeypointRows, read_training_csv
from facecue.provenance import current_command
from facecue.train.augment import augment_keypoints
from facecue.train.backbone import load_initial_weights
from facecue.train.export import export_onnx
from facecue.train.loop import TrainConfig, finished_run, fit, load_best, shuffled_batches
from facecue.train.losses import LOSSES
from facecue.train.models import KeypointNet
from facecue.vision.crop import KEYPOINTS_CROP


def _batches(images: torch.Tensor, keypoints: torch.Tensor, batch_size: int, seed: int,
             epoch: int, flip_prob: float, cutout_prob: float
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An epoch's augmented batches: crops and their flattened (N, 30) keypoints."""
    gen, batches = shuffled_batches(len(images), batch_size, seed, epoch)
    for idx in batches:
        x, k = augment_keypoints(images[idx], keypoints[idx], gen, flip_prob, cutout_prob)
        yield x, k.reshape(len(idx), -1)


def predict(model: torch.nn.Module, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, 96, 96) uint8 -> (N, 15, 2) with a torch model in eval mode."""
    x = torch.from_numpy(np.asarray(images, np.float32))[:, None]
    with torch.no_grad():
        out = [model(x[i:i + batch]) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy().reshape(len(x), -1, 2) if out else np.zeros((0, 15, 2))


def _split_rows(data: KeypointRows, limit: int,
                with_val: bool = False) -> tuple[KeypointRows, KeypointRows]:
    """Train and val rows: the converter's identity split, else a fixed 90/10 row split.
    ``with_val``: the train rows take in the val rows too (val is then only watched)."""
    if "Split" in data.extra:
        is_val = data.extra["Split"] == "val"
        is_train = (data.extra["Split"] == "train") | (is_val & with_val)
    else:
        is_val = np.random.default_rng(0).random(len(data)) < 0.1
        is_train = ~is_val | with_val
    train, val = data.subset(is_train), data.subset(is_val)
    if limit:
        train, val = train.subset(np.arange(min(limit, len(train)))), \
            val.subset(np.arange(min(limit, len(val))))
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"need train and val rows, found {len(train)} and {len(val)}")
    return train, val


def train_keypoints(data: str, out: str, *, epochs: int = 80, batch_size: int = 64,
                    lr: float = 0.002, width: int = 16, flip_prob: float = 0.0,
                    cutout_prob: float = 0.0, context_head: bool = False,
                    fine_heatmaps: bool = False, init: str | None = None,
                    with_val: bool = False, loss: str = "smooth-l1", ema: float = 0.0,
                    seed: int = 0, threads: int = 1, limit: int = 0, resume: bool = False,
                    plots: bool = False) -> dict:
    """Train on the ``train`` rows, pick the epoch on ``val`` RMSE, export ONNX and score it on
    ``val`` into ``OUT/metrics.json`` (the held-out ``test`` rows are left to ``ship``).

    ``with_val``: the final refit once the settings are chosen: train on train and val
    together and keep the last epoch. Val figures are then of seen rows and are recorded as
    ``val_trained_on``, never as val. ``loss``: a name in ``LOSSES``; ``ema``: the decay of a
    weight average kept beside the run (``OUT/ema.pt``, scored every epoch); ``init``: a
    ``best.pt`` to start from (:func:`facecue.train.backbone.load_initial_weights`). Returns
    what ``metrics.json`` holds."""
    started = time.time()
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
    torch.set_num_threads(threads)
    rows = read_training_csv(data)
    train, val = _split_rows(rows, limit, with_val)
    val_name = "val_trained_on" if with_val else "val"
    images = torch.from_numpy(train.images.astype(np.float32))[:, None]
    keypoints = torch.from_numpy(train.keypoints)
    torch.manual_seed(seed)
    model = KeypointNet(width=width, context_head=context_head, fine_heatmaps=fine_heatmaps)
    if init:
        load_initial_weights(model, init)
    config = TrainConfig(epochs=epochs, batch_size=min(batch_size, len(train)), lr=lr,
                         weight_decay=0.01, optimizer="adamw", seed=seed, threads=threads,
                         ema_decay=ema)
    meta = {"command": current_command(), "data": str(data),
            "width": width, "context_head": context_head, "fine_heatmaps": fine_heatmaps,
            "flip_prob": flip_prob, "cutout_prob": cutout_prob, "limit": limit,
            "init": init and {"file": str(init), "sha256": file_sha256(init)},
            "with_val": with_val, "loss": loss, "train_rows": len(train), "val_rows": len(val)}

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        r = keypoint_report(predict(m, val.images), val.keypoints)
        return {f"{val_name}_rmse_px96": r["rmse_px96"], f"{val_name}_nme": r["nme"]}

    summary = fit(model, train_batches=lambda e: _batches(images, keypoints,
                                                         config.batch_size, seed, e,
                                                         flip_prob, cutout_prob),
                  steps_per_epoch=len(train) // config.batch_size, loss_fn=LOSSES[loss],
                  evaluate=evaluate, select=None if with_val else "val_rmse_px96",
                  higher_is_better=False,
                  out_dir=out, config=config, resume=resume, meta=meta)
    out_dir = Path(out)
    load_best(model, out_dir)
    onnx_path = out_dir / "keypoints15.onnx"
    parity = export_onnx(model, KEYPOINTS_CROP.size, onnx_path, check_inputs=val.images[:16])
    result = {"best_epoch": summary["best_epoch"], "epochs": epochs,
              "train_seconds": round(summary["seconds"], 1),
              "run_seconds_this_call": round(time.time() - started, 1),
              "onnx_parity_max_abs": parity, "meta": summary["meta"], "config": summary["config"],
              "splits": split_counts(rows), "metrics": {}}
    # val only (the held-back rows without an identity split): runs are compared on it, so
    # the held-out test identities are first scored by `ship_keypoints`
    source, name = (rows, "val") if "Split" in rows.extra else (val, "all")
    result["metrics"][val_name] = evaluate_keypoints(
        source, split=name, model=onnx_path, plots=out_dir / "plots" if plots else None)
    if plots:
        from facecue.evaluation.plots import plot_history

        plot_history(summary["history"], out_dir / "plots" / "training_curves.png",
                     [("train_loss", f"train loss ({loss}, px)"),
                      (f"{val_name}_rmse_px96", f"{val_name} RMSE (px at 96)"),
                      (f"{val_name}_nme", f"{val_name} NME")])
    atomic_write_json(out_dir / "metrics.json", result)
    return result


def split_counts(rows: KeypointRows) -> dict:
    """Identities and images per split (and fallback-box rows), for the model card."""
    if "Split" not in rows.extra:
        return {"all": {"images": len(rows)}}
    out = {}
    for name in ("train", "val", "test"):
        part = rows.split(name)
        out[name] = {"identities": len(set(part.extra["Identity"].tolist())),
                     "images": len(part),
                     "fallback_box": int((part.extra["Fallback"] == "1").sum())}
    return out


def net_options(meta: dict) -> dict:
    """The KeypointNet arguments a run was trained with (runs from before an option existed
    lack its key and had it off)."""
    return {"width": meta["width"], "context_head": meta.get("context_head", False),
            "fine_heatmaps": meta.get("fine_heatmaps", False)}


def run_record(run: str | Path) -> dict:
    """A finished run's ``metrics.json`` (what :func:`train_keypoints` returned)."""
    run = finished_run(run, ("metrics.json", "best.pt"), "train keypoints")
    return json.loads((run / "metrics.json").read_text())


def load_run(run: str | Path) -> KeypointNet:
    """A finished run's best network, ready to predict or export."""
    return load_best(KeypointNet(**net_options(run_record(run)["meta"])), run)
