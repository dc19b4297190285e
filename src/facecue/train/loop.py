"""The training loop every facecue model shares (PyTorch; needs the ``train`` extra).

What it guarantees: a fixed seed per epoch (so a resumed run continues exactly where an
uninterrupted one would), an atomic checkpoint after every epoch (``last.pt``), the best epoch
by a validation metric kept apart (``best.pt``), per-epoch metrics in ``history.json``, and a
progress bar. With ``ema_decay`` it also keeps a moving average of the weights beside the
trained ones (it changes nothing in their training), scores it every epoch (``ema_*`` metrics)
and saves the last epoch's average as ``ema.pt``.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from facecue.fileio import atomic_write_json, new_file_beside

log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=nn.Module)
Batches = Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum) or "adamw"
    warmup_epochs: float = 1.0
    seed: int = 0
    threads: int = 2
    ema_decay: float = 0.0  # > 0: also keep an exponential moving average of the weights


class RunExistsError(RuntimeError):
    pass


def atomic_torch_save(obj, path: Path) -> None:
    fd, tmp = new_file_beside(path)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _progress(total: int, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in the train extra; a plain loop still trains
        return None
    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True,
                mininterval=2.0)


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * t))


def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for avg, now in zip(ema.state_dict().values(), model.state_dict().values(),
                            strict=True):
            if avg.dtype.is_floating_point:
                avg.lerp_(now, 1.0 - decay)
            else:  # counters such as BatchNorm's num_batches_tracked
                avg.copy_(now)


def shuffled_batches(n: int, batch_size: int, seed: int,
                     epoch: int) -> tuple[torch.Generator, list[torch.Tensor]]:
    """An epoch's random generator and the indices of its full batches of ``n`` shuffled rows
    (the rest dropped); both come from ``seed`` and ``epoch`` alone, so a resumed run replays
    the batches (and, drawing from the generator, their augmentation) exactly."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen)
    return gen, [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def finished_run(run: str | Path, files: tuple[str, ...], command: str) -> Path:
    """``run`` as a Path, once it holds ``files`` (what a finished ``facecue COMMAND`` run
    leaves), else FileNotFoundError naming the first missing one."""
    run = Path(run)
    for name in files:
        if not (run / name).exists():
            raise FileNotFoundError(f"{run}: no {name}; is this a finished `facecue {command}` "
                                    "run?")
    return run


def load_best(model: Model, run: str | Path) -> Model:
    """``model`` with the weights of ``run``'s best epoch (``best.pt``), in eval mode and
    plain memory format (training leaves it channels-last), ready to export or predict."""
    model.load_state_dict(torch.load(Path(run) / "best.pt", map_location="cpu"))
    return model.eval().to(memory_format=torch.contiguous_format)


def fit(model: nn.Module, *, train_batches: Batches, steps_per_epoch: int,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        evaluate: Callable[[nn.Module], dict[str, float]], select: str | None,
        higher_is_better: bool, out_dir: str | Path, config: TrainConfig,
        resume: bool = False, meta: dict | None = None, same: tuple[str, ...] = ()) -> dict:
    """Train ``model`` and return the run summary (history, best epoch, wall time).

    ``train_batches(epoch)`` yields ``(inputs, targets)``; it must draw its randomness from the
    epoch number so that resuming replays the same batches. ``evaluate(model)`` returns
    validation metrics; ``select`` names the one that picks the best epoch, or is None to
    keep the last epoch (a final run with no held-back rows to choose with). ``same`` names
    the ``meta`` entries a resumed run must share with the run it continues (what it learns
    from, beyond ``config``), so a resume cannot quietly change the recipe.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last, best_path = out / "last.pt", out / "best.pt"
    torch.set_num_threads(config.threads)
    model = model.to(memory_format=torch.channels_last)
    params_decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    params_plain = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": params_decay, "weight_decay": config.weight_decay},
              {"params": params_plain, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    elif config.optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=config.lr)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}")

    ema = copy.deepcopy(model).eval() if config.ema_decay else None
    state = {"epoch": 0, "history": [], "best": None, "best_epoch": None, "seconds": 0.0}
    if last.exists():
        if not resume:
            raise RunExistsError(f"{out} already holds a run (last.pt); pass --resume to "
                                 "continue it or choose another --out")
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        if ckpt["config"] != asdict(config):
            raise RunExistsError(f"{last} was trained with {ckpt['config']}, not {asdict(config)}")
        for key in same:
            if ckpt["meta"].get(key) != (meta or {}).get(key):
                raise RunExistsError(f"{last} was trained with {key} {ckpt['meta'].get(key)!r}, "
                                     f"not {(meta or {}).get(key)!r}")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        state = ckpt["state"]
        meta = ckpt["meta"]  # the run is described by the command that started it
        log.info("resuming %s after epoch %d", out, state["epoch"])

    total = config.epochs * steps_per_epoch
    warmup = max(1, round(config.warmup_epochs * steps_per_epoch))
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        torch.manual_seed(config.seed * 100_003 + epoch)
        model.train()
        t0 = time.time()
        bar = _progress(steps_per_epoch, f"epoch {epoch}/{config.epochs}")
        loss_sum, n = 0.0, 0
        for i, (x, y) in enumerate(train_batches(epoch)):
            lr = _lr_at((epoch - 1) * steps_per_epoch + i, total, warmup, config.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x.contiguous(memory_format=torch.channels_last)), y)
            loss.backward()
            opt.step()
            if ema is not None:
                _update_ema(ema, model, config.ema_decay)
            loss_sum += loss.item() * len(x)
            n += len(x)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / n:.4f}", lr=f"{lr:.4f}", refresh=False)
        if bar is not None:
            bar.close()
        model.eval()
        with torch.no_grad():
            metrics = evaluate(model)
            if ema is not None:
                metrics |= {f"ema_{k}": v for k, v in evaluate(ema).items()}
        seconds = time.time() - t0
        state["seconds"] += seconds
        row = {"epoch": epoch, "train_loss": loss_sum / max(n, 1), **metrics,
               "lr": lr, "seconds": round(seconds, 1)}
        state["history"].append(row)
        score = metrics[select] if select else epoch  # no select: the last epoch is kept
        improved = select is None or state["best"] is None or (
            score > state["best"] if higher_is_better else score < state["best"])
        if improved:
            state["best"], state["best_epoch"] = score, epoch
            atomic_torch_save(model.state_dict(), best_path)
        state["epoch"] = epoch
        checkpoint = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                      "state": state, "config": asdict(config), "meta": meta or {}}
        if ema is not None:
            checkpoint["ema"] = ema.state_dict()
            atomic_torch_save(ema.state_dict(), out / "ema.pt")
        atomic_torch_save(checkpoint, last)
        summary = {"config": asdict(config), "meta": meta or {}, **state}
        atomic_write_json(out / "history.json", summary)
        shown = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in row.items())
        log.info("%s%s", shown, " *" if improved else "")
    return {"config": asdict(config), "meta": meta or {}, **state}
