"""Train the 15-keypoint regressor on Kaggle-format 96x96 crops (PyTorch; ``train`` extra).

Rows with missing keypoints still train the keypoints they have (masked loss). Augmentation
moves the keypoints with the pixels: a random affine warp, the detector's measured box jitter,
brightness/contrast and, optionally, a blanked rectangle (occlusion; the keypoints under it
stay the target) and a horizontal flip with left/right swap (off by default: worse on val).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from facecue.evaluation.metrics import keypoint_report
from facecue.fileio import atomic_write_bytes, atomic_write_json, file_sha256
from facecue.formats.kaggle_keypoints import KeypointRows, read_training_csv
from facecue.labels import KEYPOINT_NAMES
from facecue.provenance import current_command
from facecue.train.augment import cutout, photometric, random_affine, warp
from facecue.train.loop import TrainConfig, fit
from facecue.train.models import KeypointNet
from facecue.vision.crop import EXPRESSION_CROP, KEYPOINTS_CROP, crop_face
from facecue.vision.runtime import runtime_requirements

SIZE = KEYPOINTS_CROP.size
# Keypoint order after a horizontal flip: the subject's left and right trade places.
FLIP_ORDER = tuple(
    KEYPOINT_NAMES.index(n.replace("left", "#").replace("right", "left").replace("#", "right"))
    for n in KEYPOINT_NAMES)
# Frame-to-frame Haar box noise, std in units of the box side: centre shift per axis and log
# side, as measured on the worst of four real clips (0.012-0.013 and 0.027; re-measured by
# benchmarks/bench_keypoints.py). Training on it keeps predictions steady under box wobble.
BOX_JITTER_SHIFT = 0.012
BOX_JITTER_LOG_SCALE = 0.027


def hflip(images: torch.Tensor, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror (N, 1, S, S) crops and their (N, 15, 2) keypoints, swapping left and right."""
    kp = keypoints[:, list(FLIP_ORDER)].clone()
    kp[..., 0] = SIZE - kp[..., 0]
    return images.flip(-1), kp


def warp_points(points: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Move (N, K, 2) crop-pixel points by the warp whose ``theta`` maps output to input."""
    u = points * (2.0 / SIZE) - 1.0
    a, t = theta[:, :, :2], theta[:, :, 2]
    u = torch.linalg.solve(a, (u - t[:, None]).transpose(1, 2)).transpose(1, 2)
    return (u + 1.0) * (SIZE / 2.0)


def augment(images: torch.Tensor, keypoints: torch.Tensor, gen: torch.Generator,
            flip_prob: float = 0.0, cutout_prob: float = 0.0
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip, rotation/scale/shift, box jitter, photometric change and (in a share
    ``cutout_prob`` of crops) a blanked rectangle, over which the keypoints stay the target."""
    n = len(images)
    flip = torch.rand(n, generator=gen) < flip_prob
    fi, fk = hflip(images[flip], keypoints[flip])
    images, keypoints = images.clone(), keypoints.clone()
    images[flip], keypoints[flip] = fi, fk
    theta = random_affine(n, gen, rotate_deg=15.0, scale=0.10, shift=0.06, flip=False)
    box_unit = 2.0 / KEYPOINTS_CROP.scale  # the detector box side in [-1, 1] crop units
    theta[:, :, :2] *= torch.exp(BOX_JITTER_LOG_SCALE * torch.randn(n, generator=gen))[:, None,
                                                                                        None]
    theta[:, :, 2] += BOX_JITTER_SHIFT * box_unit * torch.randn(n, 2, generator=gen)
    images = photometric(warp(images, theta), gen)
    if cutout_prob:
        images = cutout(images, gen, p=cutout_prob)
    return images, warp_points(keypoints, theta)


def masked_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 (pixels) over the target coordinates that are present (not NaN)."""
    target = target.reshape(pred.shape)
    mask = ~torch.isnan(target)
    if not mask.any():
        return pred.sum() * 0.0
    return torch.nn.functional.smooth_l1_loss(pred[mask], target[mask], beta=1.0)


def point_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean distance (pixels) from each present target point (x and y not NaN) to its
    prediction: the numerator of NME, so training lowers what the benchmark measures, where
    smooth-L1 is quadratic for the sub-pixel errors that dominate."""
    pred = pred.reshape(len(pred), -1, 2)
    target = target.reshape(pred.shape)
    present = ~torch.isnan(target).any(-1)
    if not present.any():
        return pred.sum() * 0.0
    diff = pred[present] - target[present]
    return torch.sqrt((diff * diff).sum(-1) + 1e-6).mean()


LOSSES = {"smooth-l1": masked_loss, "point": point_loss}


def _batches(images: torch.Tensor, keypoints: torch.Tensor, batch_size: int, seed: int,
             epoch: int, flip_prob: float, cutout_prob: float
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(images), generator=gen)
    for i in range(0, len(order) - batch_size + 1, batch_size):
        idx = order[i:i + batch_size]
        x, k = augment(images[idx], keypoints[idx], gen, flip_prob, cutout_prob)
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


def fer_face_box(side: int = 48) -> tuple[float, float, float, float]:
    """The Haar box of a FER2013 frame: the frame / ``EXPRESSION_CROP.scale``, centred (as
    measured on PublicTest faces; tests/test_expression_crop.py)."""
    box = side / EXPRESSION_CROP.scale
    return ((side - box) / 2, (side - box) / 2, box, box)


def fer_as_keypoint_crops(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) FER2013 faces -> (N, 96, 96) crops cut like the pipeline's keypoint crops,
    by ``crop_face`` around the box the detector would give (border pixels repeated)."""
    box = fer_face_box(images.shape[1])
    return np.stack([crop_face(im, box, KEYPOINTS_CROP).image for im in images]) \
        if len(images) else np.zeros((0, SIZE, SIZE), np.uint8)


def pretrain_backbone(data: str, out: str, epochs: int = 10, batch_size: int = 128,
                      lr: float = 0.05, width: int = 16, seed: int = 0, threads: int = 1,
                      limit: int = 0, resume: bool = False) -> dict:
    """Train the keypoint net's conv stages on a bigger face set first: as a fer7 expression
    classifier on the FER2013 Training faces (28,709, against 3,099 keypoint-labelled train
    crops), framed like keypoint crops, the epoch picked on PublicTest. ``train keypoints
    --init OUT/best.pt`` starts from these weights."""
    from facecue.formats.fer2013 import read_fer2013
    from facecue.train.expression import accuracy, augmented_batches
    from facecue.train.models import expression_net

    torch.manual_seed(seed)
    fer, _ = read_fer2013(data)

    def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        faces, targets, _ = fer.split(split).for_labels("fer7")
        faces, targets = (faces[:limit], targets[:limit]) if limit else (faces, targets)
        crops = fer_as_keypoint_crops(faces)
        return torch.from_numpy(crops.astype(np.float32))[:, None], torch.from_numpy(targets)

    train_x, train_y = tensors("Training")
    val_x, val_y = tensors("PublicTest")
    model = expression_net(7, width=width)  # its stages are KeypointNet's (minus the last pool)
    config = TrainConfig(epochs=epochs, batch_size=min(batch_size, len(train_x)), lr=lr,
                         seed=seed, threads=threads)
    return fit(model, train_batches=augmented_batches(train_x, train_y, config.batch_size, seed),
               steps_per_epoch=len(train_x) // config.batch_size,
               loss_fn=lambda logits, y: torch.nn.functional.cross_entropy(
                   logits, y, label_smoothing=0.1),
               evaluate=lambda m: {"val_accuracy": accuracy(m, val_x, val_y)},
               select="val_accuracy", higher_is_better=True, out_dir=out, config=config,
               resume=resume, meta={"task": "keypoint backbone (fer7 on keypoint-framed crops)",
                                    "command": current_command(),
                                    "data": str(data), "width": width, "limit": limit})


def load_initial_weights(model: KeypointNet, path: str | Path) -> None:
    """Start ``model`` from a ``best.pt``: a keypoint run's with the same heads (every weight),
    else a keypoint run's or a ``pretrain_backbone`` run's conv stages (the heads start new)."""
    state = torch.load(path, map_location="cpu")
    own_all = model.state_dict()
    if set(state) == set(own_all) and all(v.shape == own_all[k].shape for k, v in state.items()):
        model.load_state_dict(state)
        return
    own = model.features.state_dict()
    taken = {k: v for k, v in ((k.removeprefix("features."), v) for k, v in state.items()
                               if k.startswith("features.")) if k in own}
    if set(taken) != set(own) or any(v.shape != own[k].shape for k, v in taken.items()):
        raise ValueError(f"{path} does not hold this KeypointNet's conv stages (another width?)")
    model.features.load_state_dict(taken)


def pseudo_label(runs: list[str | Path], fer_data: str, out: str | Path, limit: int = 0,
                 batch: int = 512) -> int:
    """Label the FER2013 Training faces (framed like keypoint crops) with the mean keypoints of
    finished runs, into a Kaggle-format training CSV: 28,709 more faces for a student net to
    learn from (``train keypoints --data OUT``, then ``--init`` its best.pt on the real data).
    Returns the number of rows. ``OUT.json`` records how the file was made, so that a
    student's model card can name its teachers and count their training time."""
    from facecue.formats.fer2013 import read_fer2013
    from facecue.formats.kaggle_keypoints import KeypointRows, write_training_csv

    started = time.time()
    teacher = _teacher(runs)
    faces = read_fer2013(fer_data)[0].split("Training").images
    crops = fer_as_keypoint_crops(faces[:limit] if limit else faces)
    rows = KeypointRows(keypoints=predict(teacher, crops, batch).astype(np.float32),
                        images=crops)
    write_training_csv(out, rows)
    _record_labelling(out, runs, started, fer=str(fer_data), rows=len(rows))
    return len(rows)


def blend_labels(runs: list[str | Path], data: str, out: str | Path, splits: list[str],
                 weight: float = 0.5, batch: int = 512) -> int:
    """Copy a keypoints CSV with the rows of ``splits`` relabelled as ``weight`` x their own
    keypoints + (1 - ``weight``) x the finished runs' mean keypoints (the teacher's alone where
    a keypoint is missing): distillation on the real faces, which also evens out annotation
    noise. Rows of other splits (val when it scores, always test) are copied unchanged.
    Returns the number of rows relabelled; ``OUT.json`` records how, as ``pseudo_label``."""
    from facecue.formats.kaggle_keypoints import write_training_csv

    if not 0 <= weight <= 1:
        raise ValueError(f"weight must be in [0, 1], not {weight}")
    if "test" in splits:
        raise ValueError("the test rows are held out; they are never relabelled")
    started = time.time()
    rows = read_training_csv(data)
    if "Split" not in rows.extra:
        raise ValueError(f"{data} has no Split column (make it with `facecue data from-68`)")
    chosen = np.isin(rows.extra["Split"], splits)
    taught = predict(_teacher(runs), rows.images[chosen], batch).astype(np.float32)
    own = rows.keypoints[chosen]
    rows.keypoints[chosen] = np.where(np.isnan(own), taught, weight * own + (1 - weight) * taught)
    write_training_csv(out, rows)
    _record_labelling(out, runs, started, data=str(data), splits=list(splits), weight=weight,
                      rows=int(chosen.sum()))
    return int(chosen.sum())


def _teacher(runs: list[str | Path]) -> MeanKeypoints:
    """The mean of finished runs' best networks."""
    members = []
    for run in map(Path, runs):
        meta = json.loads((run / "metrics.json").read_text())["meta"]
        net = KeypointNet(**net_options(meta))
        net.load_state_dict(torch.load(run / "best.pt", map_location="cpu"))
        members.append(net.eval())
    return MeanKeypoints(members).eval()


def _record_labelling(out: str | Path, runs: list[str | Path], started: float, **facts) -> None:
    atomic_write_json(Path(f"{out}.json"), {
        "command": current_command(), "teachers": [str(r) for r in runs], **facts,
        "seconds": round(time.time() - started, 1), "sha256": file_sha256(out)})


def labelling_record(data: str | Path) -> dict | None:
    """How a teacher-labelled data file was made (its ``DATA.json``), None for source data."""
    made = Path(f"{data}.json")
    return json.loads(made.read_text()) if made.exists() else None


def lineage(run: str | Path) -> list[dict]:
    """Every training step behind a run, upstream first: the runs it started from
    (``--init``) and, for pseudo-labelled data, the labelling and its teacher runs, each with
    its command, seconds and the steps it needs (``after``). A model's training time comes
    from its members' lineages, each step counted once (:func:`elapsed_on_cores`)."""
    run = Path(run)
    if (run / "metrics.json").exists():  # a `train keypoints` run
        record = json.loads((run / "metrics.json").read_text())
        meta, seconds = record["meta"], record["train_seconds"]
    else:  # a `train keypoint-backbone` run
        record = json.loads((run / "history.json").read_text())
        meta, seconds = record["meta"], round(record["seconds"], 1)
    steps: list[dict] = []
    after: list[str] = []
    if meta.get("init"):
        steps += lineage(Path(meta["init"]["file"]).parent)
        after.append(steps[-1]["step"])
    if record := labelling_record(meta["data"]):
        for teacher in record["teachers"]:
            steps += lineage(teacher)
        steps.append({"step": f"teacher labels {meta['data']}", "command": record["command"],
                      "seconds": record["seconds"], "after": list(map(str, record["teachers"]))})
        after.append(steps[-1]["step"])
    steps.append({"step": str(run), "command": meta["command"], "seconds": seconds,
                  "after": after})
    return steps


def elapsed_on_cores(steps: list[dict], cores: int = 2) -> float:
    """Seconds from the first step's start to the last step's end when ``steps`` run
    ``cores`` at a time, one per core: whenever a core is free it takes the first listed step
    whose inputs (``after``) have ended, and waits when there is none. The runs train on one
    thread each and their seconds were measured with the other core busy, so this is the
    elapsed time of rebuilding the model on this machine that way
    (``scripts/train_keypoints.sh``)."""
    names = {step["step"] for step in steps}
    if missing := {d for step in steps for d in step.get("after", [])} - names:
        raise ValueError(f"steps need steps not listed: {sorted(missing)}")
    free, end, waiting = [0.0] * cores, {}, list(steps)
    while waiting:
        core = min(range(cores), key=free.__getitem__)
        now = free[core]
        ready = [s for s in waiting if all(end.get(d, math.inf) <= now for d in s.get("after", []))]
        if not ready:  # idle until the next running step ends
            free[core] = min((t for t in end.values() if t > now), default=math.inf)
            if free[core] == math.inf:
                raise ValueError("the steps' inputs form a cycle")
            continue
        step = ready[0]
        end[step["step"]] = free[core] = now + step["seconds"]
        waiting.remove(step)
    return max(end.values(), default=0.0)


def train_keypoints(data: str, out: str, epochs: int = 80, batch_size: int = 64,
                    lr: float = 0.002, width: int = 16, seed: int = 0, threads: int = 1,
                    limit: int = 0, resume: bool = False, plots: bool = False,
                    flip_prob: float = 0.0, cutout_prob: float = 0.0,
                    context_head: bool = False, fine_heatmaps: bool = False,
                    init: str | None = None, with_val: bool = False,
                    loss: str = "smooth-l1", ema: float = 0.0) -> dict:
    """Train on the ``train`` rows, pick the epoch on ``val`` RMSE, export ONNX and score it on
    ``val`` into ``OUT/metrics.json`` (the held-out ``test`` rows are left to ``ship``).

    ``with_val``: the final refit once the settings are chosen: train on train and val
    together and keep the last epoch. Val figures are then of seen rows and are recorded as
    ``val_trained_on``, never as val. ``loss``: a name in ``LOSSES``; ``ema``: the decay of a
    weight average kept beside the run (``OUT/ema.pt``, scored every epoch)."""
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
    model.load_state_dict(torch.load(out_dir / "best.pt", map_location="cpu"))
    model = model.eval().to(memory_format=torch.contiguous_format)
    from facecue.train.export import export_onnx

    onnx_path = out_dir / "keypoints15.onnx"
    parity = export_onnx(model, SIZE, onnx_path, check_inputs=val.images[:16])
    result = {"best_epoch": summary["best_epoch"], "epochs": epochs,
              "train_seconds": round(summary["seconds"], 1),
              "run_seconds_this_call": round(time.time() - started, 1),
              "onnx_parity_max_abs": parity, "meta": summary["meta"], "config": summary["config"],
              "splits": split_counts(rows), "metrics": {}}
    from facecue.evaluation.evaluate import evaluate_keypoints

    # val only (the held-back rows without an identity split): runs are compared on it, so
    # the held-out test identities are first scored by `facecue keypoints ship`
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


class MeanKeypoints(torch.nn.Module):
    """The mean of several keypoint networks' outputs (an ensemble of training runs)."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


def ship_model(run_dirs: list[str | Path], weights_dir: str | Path,
               quantize: bool = True) -> dict:
    """Build ``keypoints15.onnx`` in ``weights_dir`` from finished runs: the mean of their
    best networks, int8-quantized (calibrated on 512 ``train`` crops), scored on val and the
    held-out test identities, with the card ``keypoints15.json`` written from the runs' own
    records, so no number is typed by hand. Run it from the directory the training ran in
    (the data path is recorded relative)."""
    runs = [Path(r) for r in run_dirs]
    if not runs:
        raise ValueError("name at least one training run")
    results = []
    for run in runs:
        for name in ("metrics.json", "best.pt"):
            if not (run / name).exists():
                raise FileNotFoundError(f"{run}: no {name}; is this a finished `facecue train "
                                        "keypoints` run?")
        results.append(json.loads((run / "metrics.json").read_text()))
    data = results[0]["meta"]["data"]
    if any(r["meta"]["data"] != data for r in results):
        raise ValueError("the runs were trained on different data files")
    record = labelling_record(data) or {}
    relabelled = record if "splits" in record else None  # `blend-labels`, not `pseudo-label`
    source = relabelled["data"] if relabelled else data
    members = []
    for run, result in zip(runs, results, strict=True):
        net = KeypointNet(**net_options(result["meta"]))
        net.load_state_dict(torch.load(run / "best.pt", map_location="cpu"))
        members.append(net.eval().to(memory_format=torch.contiguous_format))
    model = MeanKeypoints(members).eval()
    rows = read_training_csv(data)
    train = rows.split("train") if "Split" in rows.extra else rows
    weights = Path(weights_dir)
    from facecue.evaluation.evaluate import evaluate_keypoints
    from facecue.train.export import calibration_rows, export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keypoints15.onnx"
        parity = export_onnx(model, SIZE, path, check_inputs=train.images[:16],
                             calibration=train.images if quantize else None,
                             unsigned_activations=True)
        names = ("val", "test") if "Split" in rows.extra else ("all",)
        metrics = {name: evaluate_keypoints(rows, split=name, model=path) for name in names
                   if len(rows.split(name))}
        sha256 = file_sha256(path)
        atomic_write_bytes(weights / "keypoints15.onnx", path.read_bytes())
    refit = any(r["meta"].get("with_val") for r in results)
    if refit and "val" in metrics:  # figures of rows the members learnt from
        metrics["val_trained_on"] = metrics.pop("val")
    steps = list({step["step"]: step for run in runs for step in lineage(run)}.values())
    card = {
        "model": "keypoints15",
        "task": "15 Kaggle facial keypoints (x, y in 96x96 crop pixels, KEYPOINT_NAMES order)",
        "input": "N x 1 x 96 x 96 float32 raw grayscale 0..255, crop_face(gray, Haar box, "
                 f"KEYPOINTS_CROP={KEYPOINTS_CROP})",
        "output": "N x 30: x0, y0, x1, y1, ... in crop pixels",
        "architecture": (f"mean of {len(runs)}: "
                         + ", ".join("KeypointNet({})".format(", ".join(
                             f"{k}={v}" for k, v in net_options(r["meta"]).items()))
                             for r in results)
                         + ("; int8 static quantization (QDQ, per-channel int8 weights, uint8 "
                            "activations), calibrated "
                            f"on {len(calibration_rows(len(train)))} train crops (numpy seed 0)"
                            if quantize else "")),
        "onnx_parity_max_abs_before_quantization": parity,
        "onnxruntime": runtime_requirements(),
        "data": {"file": data, "file_sha256": file_sha256(data),
                 "prepared_with": f"facecue data from-68 ../shared/data/youtube-faces-68 "
                                  f"--out {source}",
                 **({"relabelled_with": relabelled["command"],
                     "relabelled": f"the {' and '.join(relabelled['splits'])} rows hold "
                                   f"{relabelled['weight']} x their own keypoints + "
                                   f"{1 - relabelled['weight']:g} x the teacher's; test rows "
                                   "are the originals"} if relabelled else {}),
                 "origin": "youtube-faces-68 (udacity/P1_Facial_Keypoints, YouTube Faces "
                           "frames), converted by `facecue data from-68`",
                 "split": "by identity (sha256 of the name without _NN), train/val/test ~80/10/10;"
                          + (" val chose the settings (epochs, members) in runs trained on train"
                             " alone, then the members were refit on train + val with them "
                             "(`--with-val`, last epoch kept)" if refit else
                             " val picks the epoch and the members")
                          + "; test is held out",
                 "splits": results[0]["splits"]},
        "build_command": current_command(),
        "members": [{"run": str(run), "command": r["meta"]["command"],
                     "seed": r["config"]["seed"], "config": r["config"],
                     "best_epoch": r["best_epoch"], "train_seconds": r["train_seconds"],
                     "val": {k: r["metrics"]["val"][k] for k in ("rmse_px96", "nme")}
                     if "val" in r["metrics"] else None}
                    for run, r in zip(runs, results, strict=True)],
        "training_steps": steps,
        "training_wall_time_minutes": round(elapsed_on_cores(steps) / 60, 1),
        "training_minutes_one_after_another": round(sum(s["seconds"] for s in steps) / 60, 1),
        "training_wall_time_note": "the training_steps run two at a time, one per core "
                                   "(1 torch thread each), each once the steps it needs "
                                   "(after) have ended; elapsed time of that schedule from "
                                   "the steps' measured seconds",
        "machine": "this development machine, 1 torch thread per run (2 cores shared)",
        "metrics": {split: {k: m[k] for k in ("n", "rmse_px96", "nme", "nme_n",
                                              "mean_point_error_px96", "per_keypoint")}
                    for split, m in metrics.items()},
        "metrics_note": "test = held-out identities never used for training or any choice"
                        + ("; val_trained_on = val identities the members were refit on"
                           if refit else ""),
        "sha256": sha256,
    }
    atomic_write_json(weights / "keypoints15.json", card)
    return card
