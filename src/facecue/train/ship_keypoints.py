"""Build the shipped keypoint model from finished training runs (needs the ``train`` extra).

One ONNX graph gives the mean keypoints of every member run, int8-quantized (calibrated on
``train`` crops); the card records every member's command, seed and figures, every training
step behind them with the elapsed time on this machine's two cores, and the val and held-out
test figures measured on the shipped file itself.
"""

from __future__ import annotations

from pathlib import Path

from facecue.evaluation.evaluate import evaluate_keypoints
from facecue.fileio import file_sha256
from facecue.formats.kaggle_keypoints import read_training_csv
from facecue.train.export import calibration_rows
from facecue.train.keypoints import net_options, run_record
from facecue.train.lineage import elapsed_on_cores, labelling_record, lineage
from facecue.train.ship import build_record, ship_onnx
from facecue.train.teacher import mean_of_runs
from facecue.vision.crop import KEYPOINTS_CROP


def ship_keypoints(runs: list[str | Path], weights_dir: str | Path | None = None, *,
                   quantize: bool = True) -> dict:
    """Build ``keypoints15.onnx`` in ``weights_dir`` (None: the package's weights folder) from
    finished runs: the mean of their best networks, int8-quantized (calibrated on 512
    ``train`` crops), scored on val and the held-out test identities, with the card
    ``keypoints15.json`` written from the runs' own records, so no number is typed by hand.
    Returns the card. Run it from the directory the training ran in (the data path is
    recorded relative)."""
    runs = [Path(r) for r in runs]
    if not runs:
        raise ValueError("name at least one training run")
    results = [run_record(run) for run in runs]
    data = results[0]["meta"]["data"]
    if any(r["meta"]["data"] != data for r in results):
        raise ValueError("the runs were trained on different data files")
    rows = read_training_csv(data)
    train = rows.split("train") if "Split" in rows.extra else rows
    refit = any(r["meta"].get("with_val") for r in results)

    def describe(path: Path, parity: float) -> dict:
        names = ("val", "test") if "Split" in rows.extra else ("all",)
        metrics = {name: evaluate_keypoints(rows, split=name, model=path) for name in names
                   if len(rows.split(name))}
        if refit and "val" in metrics:  # figures of rows the members learnt from
            metrics["val_trained_on"] = metrics.pop("val")
        return _card(runs, results, len(train), metrics, parity, quantize, refit)

    return ship_onnx(mean_of_runs(runs), "keypoints15", weights_dir, size=KEYPOINTS_CROP.size,
                     check_inputs=train.images[:16],
                     calibration=train.images if quantize else None, describe=describe,
                     unsigned_activations=True)


def _card(runs: list[Path], results: list[dict], train_rows: int, metrics: dict[str, dict],
          parity: float, quantize: bool, refit: bool) -> dict:
    data = results[0]["meta"]["data"]
    record = labelling_record(data) or {}
    relabelled = record if "splits" in record else None  # `label blend`, not `label pseudo`
    source = relabelled["data"] if relabelled else data
    steps = list({step["step"]: step for run in runs for step in lineage(run)}.values())
    return {
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
                            f"on {len(calibration_rows(train_rows))} train crops (numpy seed 0)"
                            if quantize else "")),
        **build_record(parity, {
            "file": data, "file_sha256": file_sha256(data),
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
            "splits": results[0]["splits"]}),
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
    }
