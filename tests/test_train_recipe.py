"""scripts/train_keypoints.sh, the shipped keypoint model's recipe, run tiny (SMOKE) on real
faces: every step runs, in order, the card lists them all with the two-core elapsed time, and
a rerun finds every step done."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from facecue.formats.kaggle_keypoints import write_training_csv  # noqa: E402
from facecue.train.lineage import elapsed_on_cores  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_recipe_script_runs_every_step_and_a_rerun_skips_them(yt_sample, fer_sample, tmp_path):
    write_training_csv(tmp_path / "yt68_keypoints.csv.gz", yt_sample[1])  # the converted faces
    env = {**os.environ, "SMOKE": "1", "RUNS": str(tmp_path), "FER": str(fer_sample),
           "FACECUE": str(Path(sys.executable).parent / "facecue")}
    run = subprocess.run(["bash", "scripts/train_keypoints.sh"], cwd=REPO, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    card = json.loads((tmp_path / "weights" / "keypoints15.json").read_text())
    names = [Path(s["step"].split()[-1]).name for s in card["training_steps"]]
    teachers = ["kp_cut_e80", "kp_cut_e80_s1", "keypoints15_aug_e80_s1", "kp_ctxfine_e80"]
    assert sorted(names) == sorted([*teachers, "fer_pseudo4.csv.gz", "kp_pre2_s0",
                                    "kp_pre2_s1", "yt68_blend_trainval.csv.gz",
                                    "kp_p2_final_s0", "kp_p2_final_s1"])
    assert names.index("kp_p2_final_s1") > names.index("kp_pre2_s1") > \
        names.index("fer_pseudo4.csv.gz") > names.index(teachers[-1])
    assert card["training_wall_time_minutes"] == round(
        elapsed_on_cores(card["training_steps"]) / 60, 1)
    assert "test" in card["metrics"]
    (tmp_path / "weights" / "keypoints15.json").unlink()

    again = subprocess.run(["bash", "scripts/train_keypoints.sh"], cwd=REPO, env=env,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("have ") == 11 and "train keypoints" not in again.stdout
    assert (tmp_path / "weights" / "keypoints15.json").exists()
