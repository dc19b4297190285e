"""A head start for the keypoint net: its conv stages trained first on the 28,709 FER2013
Training faces (against 3,099 keypoint-labelled train crops), cut the way the pipeline cuts
keypoint crops, and the loading of such weights (or a whole keypoint run's) into a new
KeypointNet. Needs the ``train`` extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facecue.formats.fer2013 import read_fer2013
from facecue.provenance import current_command
from facecue.train.expression import accuracy, augmented_batches
from facecue.train.loop import TrainConfig, fit
from facecue.train.models import KeypointNet, expression_net
from facecue.vision.crop import EXPRESSION_CROP, KEYPOINTS_CROP, crop_face


def fer_face_box(side: int = 48) -> tuple[float, float, float, float]:
    """The Haar box of a FER2013 frame: the frame / ``EXPRESSION_CROP.scale``, centred (as
    measured on PublicTest faces; tests/test_expression_crop.py)."""
    box = side / EXPRESSION_CROP.scale
    return ((side - box) / 2, (side - box) / 2, box, box)


def fer_as_keypoint_crops(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) FER2013 faces -> (N, 96, 96) crops cut like the pipeline's keypoint crops,
    by ``crop_face`` around the box the detector would give (border pixels repeated)."""
    box = fer_face_box(images.shape[1])
    size = KEYPOINTS_CROP.size
    return np.stack([crop_face(im, box, KEYPOINTS_CROP).image for im in images]) \
        if len(images) else np.zeros((0, size, size), np.uint8)


def pretrain_backbone(data: str, out: str, *, epochs: int = 10, width: int = 16, seed: int = 0,
                      threads: int = 1, limit: int = 0, resume: bool = False) -> dict:
    """Train the keypoint net's conv stages as a fer7 expression classifier on the FER2013
    Training faces framed like keypoint crops, the epoch picked on PublicTest (batches of 128,
    learning rate 0.05). ``train keypoints --init OUT/best.pt`` starts from these weights.
    Returns the run summary of :func:`facecue.train.loop.fit`."""
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
    config = TrainConfig(epochs=epochs, batch_size=min(128, len(train_x)), lr=0.05,
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
