"""FER+ (ferplus8) on the real files: the join to the FER2013 pixels and what it leaves out, the
majority rule on real rows, bad rows named by their line, and a tiny real train -> export ->
onnxruntime -> eval round trip."""

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facecue.evaluation.evaluate import evaluate_expression
from facecue.formats.csvfile import BadRowError, DataFileError
from facecue.formats.ferplus import (
    NF_MAJORITY,
    NO_CLEAR_MAJORITY,
    UNKNOWN_MAJORITY,
    clear_majority,
    load_ferplus,
    read_ferplus,
    read_ferplus_votes,
    read_uncertain_rows,
    vote_distribution,
)
from facecue.labels import class_columns, class_names, fer_to_class
from facecue.vision.runtime import ExpressionModel

# The rows of conftest's fer_sample: the first rows of each Usage block.
SAMPLE = {"Training": 600, "PublicTest": 200, "PrivateTest": 200}
TINY = ["--epochs", "1", "--width", "8", "--batch-size", "32", "--threads", "1"]


def _facecue(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facecue.cli", *args], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def ferplus_csv(shared: Path) -> Path:
    return shared / "data" / "ferplus" / "fer2013new.csv.gz"


@pytest.fixture(scope="module")
def provenance_csv(shared: Path) -> Path:
    return shared / "data" / "fer2013" / "provenance.csv.gz"


@pytest.fixture(scope="module")
def full(fer_full, fer_csv, ferplus_csv):
    return load_ferplus(fer_full, fer_csv, ferplus_csv)


def _sample_lines(path: Path, usage_field: int) -> list[str]:
    """The header and the fer_sample rows of a real gzip CSV that is row for row with
    fer2013.csv, as text lines."""
    want = dict(SAMPLE)
    with gzip.open(path, "rt") as f:
        lines = [next(f)]
        for line in f:
            usage = line.split(",")[usage_field]
            if want[usage] > 0:
                want[usage] -= 1
                lines.append(line)
    return lines


@pytest.fixture(scope="module")
def sample(fer_sample, ferplus_csv, provenance_csv, tmp_path_factory) -> Path:
    """fer_sample's 1000 real rows with their FER+ votes and their provenance (its row numbers
    counted in the sample), laid out as in ../shared: fer2013.csv, provenance.csv.gz beside it,
    fer2013new.csv."""
    folder = tmp_path_factory.mktemp("ferplus")
    shutil.copy(fer_sample, folder / "fer2013.csv")
    (folder / "fer2013new.csv").write_text("".join(_sample_lines(ferplus_csv, 0)))
    head, *rows = _sample_lines(provenance_csv, 2)
    with gzip.open(folder / "provenance.csv.gz", "wt") as f:
        f.write(head + "".join(f"{k},{r.split(',', 1)[1]}" for k, r in enumerate(rows)))
    return folder


# --- the join on the full files --------------------------------------------------------------


def test_full_join_checks_and_counts(full, provenance_csv):
    plus, report = full
    assert report.rows == 35_887 and report.provenance == str(provenance_csv)
    assert report.uncertain == {"Training": 149, "PublicTest": 10, "PrivateTest": 16}
    assert report.short_vote_lines == [10437]  # Microsoft's file: 9 votes on this row only
    assert len(plus) == 35_887 - 175
    sizes = {"Training": 28_560, "PublicTest": 3_579, "PrivateTest": 3_573}
    left_out = {"Training": {"nf_majority": 2, "unknown_majority": 76, "no_clear_majority": 3423},
                "PublicTest": {"nf_majority": 0, "unknown_majority": 13,
                               "no_clear_majority": 367},
                "PrivateTest": {"nf_majority": 1, "unknown_majority": 10,
                                "no_clear_majority": 410}}
    scored = {"Training": 25_059, "PublicTest": 3_199, "PrivateTest": 3_152}
    for usage, n in sizes.items():
        rows = plus.split(usage)
        assert len(rows) == n and rows.left_out() == left_out[usage]
        assert len(rows.for_majority()[1]) == scored[usage] == n - sum(left_out[usage].values())
    _, targets, _ = plus.split("PrivateTest").for_majority()
    assert np.bincount(targets, minlength=8).tolist() == [1089, 893, 396, 384, 273, 18, 83, 16]
    soft = {u: len(plus.split(u).for_votes()[1]) for u in sizes}
    assert soft == {"Training": 28_558, "PublicTest": 3_579, "PrivateTest": 3_572}


def test_votes_line_up_with_the_fer2013_labels(full):
    """The FER+ majority and FER2013's own label agree on about two thirds of the rows in every
    split; one row out of step they would agree on under a fifth."""
    plus, _ = full
    lut = np.full(7, -9)
    for fer, cls in fer_to_class("ferplus8").items():
        lut[fer] = cls
    codes, fer_class = plus.majority(), lut[plus.labels]
    for usage in ("Training", "PublicTest", "PrivateTest"):
        keep = (codes >= 0) & (plus.usage == usage)
        assert 0.66 < (codes[keep] == fer_class[keep]).mean() < 0.68
    keep = codes[1:] >= 0
    assert (codes[1:][keep] == fer_class[:-1][keep]).mean() < 0.2


def test_uncertain_rows_are_the_provenance_jpeg_rows(full, fer_full, ferplus_csv,
                                                     provenance_csv):
    plus, _ = full
    uncertain = read_uncertain_rows(provenance_csv, fer_full)
    assert uncertain.sum() == 175 and not np.isin(np.flatnonzero(uncertain), plus.rows).any()
    votes = read_ferplus_votes(ferplus_csv).votes[uncertain]
    assert (votes[:, 9] == 10).sum() == 173  # all but two are FER+'s unnamed "not a face" rows
    # what is left is row for row: each kept row's pixels are the FER2013 row's
    k = np.searchsorted(plus.rows, 32_298)
    assert np.array_equal(plus.images[k], fer_full.images[32_298])


# --- the majority rule on real rows ----------------------------------------------------------


def test_majority_rule_on_real_rows(ferplus_csv):
    votes = read_ferplus_votes(ferplus_csv)
    want = {
        2: NO_CLEAR_MAJORITY,  # 4 neutral of the 9 votes left after the lone sadness vote
        3: 0,  # 6 neutral of 8 (lone surprise and sadness dropped)
        4: 0,  # 5 neutral of 8: a clear majority only once the lone votes are dropped
        5: NO_CLEAR_MAJORITY,  # 4 neutral, 4 sadness: a tie is never a clear majority
        8: 3,  # 8 sadness
        9: 1,  # 10 happiness
        462: UNKNOWN_MAJORITY,  # 4 unknown of 7
        10659: NF_MAJORITY,  # 10 not a face (a named row, kept by the join)
    }
    rows = np.array(list(want)) - 2  # file line 2 is row 0
    assert votes.lines[rows].tolist() == list(want)
    assert clear_majority(votes.votes[rows]).tolist() == list(want.values())
    assert votes.votes[4 - 2].tolist() == [5, 0, 0, 3, 1, 0, 0, 0, 1, 0]
    # no tie at the top survives anywhere in the file
    kept = np.where(votes.votes <= 1, 0, votes.votes)
    top2 = np.sort(kept, 1)[:, -2:]
    assert (clear_majority(votes.votes)[top2[:, 0] == top2[:, 1]] < 0).all()
    # the soft target: emotion votes only, renormalised
    np.testing.assert_allclose(vote_distribution(votes.votes[[3 - 2]]),
                               [[0.75, 0, 0.125, 0.125, 0, 0, 0, 0]])
    assert vote_distribution(votes.votes[[10659 - 2]]).sum() == 0


def test_soft_loss_is_cross_entropy_to_the_votes(ferplus_csv):
    torch = pytest.importorskip("torch")
    from facecue.train.losses import soft_cross_entropy

    target = torch.from_numpy(vote_distribution(read_ferplus_votes(ferplus_csv).votes[:64]))
    logits = torch.randn(64, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = -(target * torch.log_softmax(logits, 1)).sum(1).mean()
    assert float(soft_cross_entropy(logits, target)) == pytest.approx(float(want))
    assert float(soft_cross_entropy(logits, target)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, target)))


def test_label_set_ferplus8():
    assert class_names("ferplus8") == ("neutral", "happiness", "surprise", "sadness", "anger",
                                       "disgust", "fear", "contempt")
    # FER2013's ids (anger 0 ... neutral 6) -> ferplus8; contempt has none
    assert fer_to_class("ferplus8") == {6: 0, 3: 1, 5: 2, 4: 3, 0: 4, 1: 5, 2: 6}
    assert class_columns("ferplus8", "fer7") == [4, 5, 6, 1, 3, 2, 0]
    with pytest.raises(ValueError, match=r"fer7 lacks FER classes \['contempt'\]"):
        class_columns("fer7", "ferplus8")


# --- bad files -------------------------------------------------------------------------------


@pytest.mark.parametrize("break_row, problem", [
    (lambda f: f[:3] + ["1", *f[4:]], "votes sum to 11"),
    (lambda f: f[:3] + ["x", *f[4:]], "'x' is not a count"),
    (lambda f: f[:3] + ["-1", *f[4:]], "'-1' is not a count"),
    (lambda f: f[:11] + ["11"], "NF votes '11'"),
    (lambda f: ["Validation", *f[1:]], "Usage 'Validation'"),
    (lambda f: f[:-1], "expected 12 fields, found 11"),
])
def test_bad_vote_row_names_its_line(sample, tmp_path, break_row, problem):
    lines = (sample / "fer2013new.csv").read_text().splitlines()
    lines[3] = ",".join(break_row(lines[3].split(",")))  # file line 4: 5,0,0,3,1,0,0,0,1,0
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadRowError, match=rf"bad.csv: line 4: .*{problem}"):
        read_ferplus_votes(bad)


def test_header_and_misaligned_files_are_refused(sample, provenance_csv, tmp_path):
    lines = (sample / "fer2013new.csv").read_text().splitlines(keepends=True)
    bad = tmp_path / "fer2013new.csv"
    bad.write_text(lines[0].replace(",contempt", "") + "".join(lines[1:]))
    with pytest.raises(BadRowError, match=r"line 1: header lacks column\(s\) \['contempt'\]"):
        read_ferplus_votes(bad)
    bad.write_text("".join(lines[:-1]))  # one row short
    with pytest.raises(DataFileError, match=r"FER\+ file has 999 rows and the FER2013 file 1000"):
        read_ferplus(sample / "fer2013.csv", bad)
    lines[601] = lines[601].replace("PublicTest", "Training")  # the first PublicTest row
    bad.write_text("".join(lines))
    with pytest.raises(DataFileError, match="Usage differs on 1 rows, first row 600: FER\\+ "
                                            "line 602 Training, FER2013 line 602 PublicTest"):
        read_ferplus(sample / "fer2013.csv", bad)
    # the full provenance file describes these rows up to the first PublicTest one
    with pytest.raises(DataFileError, match="line 602 .*does not describe FER2013 line 602"):
        read_ferplus(sample / "fer2013.csv", sample / "fer2013new.csv", provenance_csv)


def test_options_are_checked_before_any_data_is_read(tmp_path):
    absent = tmp_path / "absent.csv"
    with pytest.raises(ValueError, match="ferplus8 comes from the FER\\+ votes"):
        evaluate_expression(absent, labels="ferplus8")
    with pytest.raises(ValueError, match="give label set ferplus8, not fer7"):
        evaluate_expression(absent, labels="fer7", ferplus=absent)
    with pytest.raises(ValueError, match="drop --skip-bad-rows"):
        evaluate_expression(absent, labels="ferplus8", ferplus=absent, skip_bad=True)


# --- a tiny real FER+ training run: train -> export -> onnxruntime -> eval --------------------


def test_sample_join_counts(sample):
    plus, report = read_ferplus(sample / "fer2013.csv", sample / "fer2013new.csv")
    assert report.rows == 1000 and report.provenance == str(sample / "provenance.csv.gz")
    assert report.uncertain == {"Training": 5, "PublicTest": 0, "PrivateTest": 1}
    assert plus.split("PrivateTest").left_out() == {"nf_majority": 0, "unknown_majority": 0,
                                                    "no_clear_majority": 29}


@pytest.fixture(scope="module")
def tiny_run(sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "ferplus8"
    r = _facecue("train", "expression", "--labels", "ferplus8", "--data",
                 str(sample / "fer2013.csv"), "--ferplus", str(sample / "fer2013new.csv"),
                 "--out", str(out), "--plots", *TINY)
    assert r.returncode == 0, r.stderr
    assert "left out 6 rows of uncertain alignment" in r.stderr
    return out


def test_soft_run_writes_model_card_history_and_plots(tiny_run):
    for name in ("last.pt", "best.pt", "model.onnx", "training_curves.png",
                 "confusion_ferplus8_PrivateTest.png", "faces_ferplus8_PrivateTest.png"):
        assert (tiny_run / name).stat().st_size > 0, name
    card = json.loads((tiny_run / "card.json").read_text())
    assert card["labels"] == list(class_names("ferplus8"))
    assert card["data"]["target"] == "soft" and card["data"]["ferplus_file"] == "fer2013new.csv"
    assert card["data"]["provenance"] == "provenance.csv.gz"
    # soft: every kept Training row has emotion votes; PublicTest: its clear-majority rows
    assert card["data"]["train_rows"] == 595 and card["data"]["val_rows"] == 175
    assert card["data"]["left_out"] == {
        "Training": {"no_emotion_votes": 0},
        "PublicTest": {"nf_majority": 0, "unknown_majority": 0, "no_clear_majority": 25}}
    assert card["metrics"]["n"] == 170 and card["metrics"]["left_out"] == {
        "uncertain_alignment": 1, "nf_majority": 0, "unknown_majority": 0,
        "no_clear_majority": 29}
    history = json.loads((tiny_run / "history.json").read_text())
    assert history["meta"]["target"] == "soft"
    assert {"val_accuracy", "val_cross_entropy_to_votes"} <= set(history["history"][0])


def test_resume_refuses_another_target(tiny_run, sample):
    pytest.importorskip("torch")
    from facecue.train.expression import train_expression
    from facecue.train.loop import RunExistsError

    with pytest.raises(RunExistsError, match="trained with target 'soft', not 'majority'"):
        train_expression(str(sample / "fer2013.csv"), "ferplus8", str(tiny_run), epochs=1,
                         width=8, batch_size=32, threads=1, resume=True,
                         ferplus=str(sample / "fer2013new.csv"), target="majority")


def test_eval_cli_matches_card_and_recomputes_from_the_votes(tiny_run, sample):
    torch = pytest.importorskip("torch")
    from facecue.train.models import expression_net

    r = _facecue("eval", "expression", "--labels", "ferplus8", "--data",
                 str(sample / "fer2013.csv"), "--ferplus", str(sample / "fer2013new.csv"),
                 "--split", "PrivateTest", "--model", str(tiny_run / "model.onnx"), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    card = json.loads((tiny_run / "card.json").read_text())
    assert report["accuracy"] == pytest.approx(card["metrics"]["accuracy"], abs=1e-12)
    assert report["n"] == 170 and report["rows_in_split"] == 200
    assert report["cross_entropy_to_votes"] == pytest.approx(
        card["metrics"]["cross_entropy_to_votes"], abs=1e-12)
    lo, hi = report["accuracy_interval95"]
    assert lo < report["accuracy"] < hi
    assert np.array(report["confusion_matrix"]).shape == (8, 8)
    assert set(report["per_class"]) == set(class_names("ferplus8"))
    # the same figures from the torch network and the raw votes, outside the reader
    plus, _ = read_ferplus(sample / "fer2013.csv", sample / "fer2013new.csv")
    rows = plus.split("PrivateTest")
    images, targets, keep = rows.for_majority()
    model = expression_net(8, width=8)
    model.load_state_dict(torch.load(tiny_run / "best.pt"))
    with torch.no_grad():
        log_p = torch.log_softmax(
            model.eval()(torch.from_numpy(images[:, None].astype(np.float32))), 1).numpy()
    emotions = rows.votes[keep][:, :8].astype(float)  # unknown and NF dropped
    votes = emotions / emotions.sum(1, keepdims=True)
    assert report["cross_entropy_to_votes"] == pytest.approx(
        float(-(votes * log_p).sum(1).mean()), abs=1e-4)
    assert report["accuracy"] == pytest.approx((log_p.argmax(1) == targets).mean(), abs=2 / 170)
    got = ExpressionModel.load("ferplus8", tiny_run / "model.onnx").predict_proba(images)
    np.testing.assert_allclose(got, np.exp(log_p), atol=1e-4)


def test_majority_target_trains_on_the_clear_majority_rows(sample, tmp_path):
    r = _facecue("train", "expression", "--labels", "ferplus8", "--data",
                 str(sample / "fer2013.csv"), "--ferplus", str(sample / "fer2013new.csv"),
                 "--out", str(tmp_path / "run"), "--target", "majority", "--limit", "64", *TINY)
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["data"]["target"] == "majority" and card["data"]["train_rows"] == 64
    assert card["data"]["left_out"]["Training"] == {"nf_majority": 0, "unknown_majority": 1,
                                                    "no_clear_majority": 73}


def test_eval_without_a_model_scores_the_shipped_one(sample):
    r = _facecue("eval", "expression", "--labels", "ferplus8", "--data",
                 str(sample / "fer2013.csv"), "--ferplus", str(sample / "fer2013new.csv"),
                 "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    model = Path(report["model"])
    assert model.name.startswith("expression_ferplus8") and model.parent.name == "weights"
    assert report["n"] == 170 and report["accuracy"] > 0.6


def test_ship_builds_a_ferplus8_model_with_its_votes_record(tiny_run, sample, tmp_path):
    """`facecue ship expression --labels ferplus8` from a real (tiny) FER+ run: the three
    builds, a card whose PrivateTest figure the evaluation recomputes, and the FER+ record."""
    pytest.importorskip("torch")
    args = ["--data", str(sample / "fer2013.csv"), "--ferplus", str(sample / "fer2013new.csv")]
    r = _facecue("ship", "expression", str(tiny_run), "--labels", "ferplus8", *args,
                 "--weights", str(tmp_path))
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "expression_ferplus8.json").read_text())
    assert card["labels"] == list(class_names("ferplus8"))
    record = card["ferplus"]
    assert record["left_out"]["PrivateTest"]["uncertain_alignment"] > 0  # the sample has some
    assert 0 < record["cross_entropy_to_votes"]["PrivateTest"] < 3
    for build in ("", ".int8w7", ".float32"):
        assert (tmp_path / f"expression_ferplus8{build}.onnx").exists()
    r = _facecue("eval", "expression", "--labels", "ferplus8", *args, "--split", "PrivateTest",
                 "--model", str(tmp_path / "expression_ferplus8.onnx"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(card["metrics"]["accuracy"])
    r = _facecue("ship", "expression", str(tiny_run), "--labels", "ferplus8",
                 "--data", str(sample / "fer2013.csv"), "--weights", str(tmp_path / "x"))
    assert r.returncode == 2 and "--ferplus" in r.stderr


def test_an_exploration_run_leaves_privatetest_unscored(sample, tmp_path):
    out = tmp_path / "explore"
    r = _facecue("train", "expression", "--labels", "ferplus8", "--data",
                 str(sample / "fer2013.csv"), "--ferplus", str(sample / "fer2013new.csv"),
                 "--out", str(out), "--no-report", *TINY)
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["metrics"]["split"] is None and "accuracy" not in card["metrics"]
    assert "PrivateTest accuracy" not in r.stderr and card["val_accuracy_PublicTest"] > 0
