"""Where a keypoint model's training time went: every step behind a run (the runs it started
from, the teacher labelling of its data and the teachers' own runs), and the elapsed time of
running those steps on this machine's cores. A shipped card adds them up from these records,
so no time is typed by hand."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from facecue.fileio import atomic_write_json, file_sha256
from facecue.provenance import current_command


def record_labelling(out: str | Path, runs: list[str | Path], started: float, **facts) -> None:
    """Write ``OUT.json`` beside a teacher-labelled data file: the command, its teacher runs,
    ``facts``, the seconds since ``started`` and the file's sha256."""
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
