"""Data files a hostile but fair user might hand over: rows skipped and said so, .csv.gz files
cut short, text that is not UTF-8, Excel's byte-order mark, misnamed gzip, empty and
header-only files, and counts the parser must refuse. Every file is made from ../shared."""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

from facecue.cli import main
from facecue.evaluation.evaluate import evaluate_expression
from facecue.formats.fer2013 import read_fer2013
from facecue.formats.kaggle_keypoints import (
    KeypointRows,
    read_id_lookup,
    read_submission,
    read_test_csv,
    read_training_csv,
    write_test_csv,
    write_training_csv,
)
from facecue.formats.landmarks68 import read_landmarks68


def _spoil(fer_sample, path, lines_to_break):
    """A copy of the FER2013 sample with the pixels of these file lines cut short."""
    lines = fer_sample.read_text().splitlines()
    for n in lines_to_break:
        e, p, u = lines[n - 1].split(",")
        lines[n - 1] = ",".join((e, p.rsplit(" ", 1)[0], u))
    path.write_text("\n".join(lines) + "\n")
    return path


def _named(path) -> str:
    """A pattern for a message that starts with ``path``."""
    return "^" + re.escape(str(path))


def _cut(src, dst, size):
    """The first ``size`` bytes of ``src``: a download or copy that stopped early."""
    dst.write_bytes(src.read_bytes()[:size])
    return dst


def _fer_test_csv(fer_sample, path):
    """A Kaggle-format test.csv.gz of real faces: FER2013 48x48 faces doubled to 96x96."""
    faces = read_fer2013(fer_sample)[0].images[:100]
    write_test_csv(path, np.arange(1, len(faces) + 1), faces.repeat(2, 1).repeat(2, 2))
    return path


# --- --skip-bad-rows says how many rows it left out, and which --------------------------------

def test_eval_skip_bad_rows_counts_and_names_lines(fer_sample, tmp_path, capsys):
    bad = _spoil(fer_sample, tmp_path / "bad.csv", [4, 9])
    args = ["eval", "expression", "--data", str(bad), "--split", "Training", "--limit", "40",
            "--skip-bad-rows"]
    assert main(args) == 0
    assert "; skipped 2 bad rows (lines 4, 9)" in capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["skipped_bad_rows"] == 2 and report["skipped_lines"] == [4, 9]
    assert "line 4: pixels has 2303 values" in report["skipped_why"][0]
    assert main(args[:-1]) == 2  # without the option the first bad row stops it, named
    assert "bad.csv: line 4: pixels has 2303 values" in capsys.readouterr().err


def test_train_skip_bad_rows_logs_count_and_lines(fer_sample, tmp_path, capsys):
    pytest.importorskip("torch")
    bad = _spoil(fer_sample, tmp_path / "bad.csv", [4, 9])
    assert main(["train", "expression", "--data", str(bad), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--limit", "64", "--width", "4", "--batch-size", "32",
                 "--threads", "1", "--skip-bad-rows"]) == 0
    assert f"facecue: {bad}: skipped 2 bad rows (lines 4, 9)" in capsys.readouterr().err


# --- a .csv.gz cut short names the file and says "truncated" ----------------------------------

@pytest.mark.parametrize("source, size, read", [
    ("fer2013/fer2013.csv.gz", 200_000, read_fer2013),
    ("kaggle-facial-keypoints/training_keypoints_only_NO_IMAGES.csv.gz", 100_000,
     lambda p: read_training_csv(p, require_image=False)),
    ("kaggle-facial-keypoints/IdLookupTable.csv.gz", 60_000, read_id_lookup),
    ("kaggle-facial-keypoints/SampleSubmission.csv.gz", 30_000, read_submission),
])
def test_truncated_gzip_is_named(shared, tmp_path, source, size, read):
    cut = _cut(shared / "data" / source, tmp_path / source.split("/")[1], size)
    with pytest.raises(ValueError, match=_named(cut) + r": truncated: the compressed data "
                       r"stops after line \d+; copy or download the file again$"):
        read(cut)


def test_truncated_test_csv_is_named(fer_sample, tmp_path):
    whole = _fer_test_csv(fer_sample, tmp_path / "test.csv.gz")
    cut = _cut(whole, tmp_path / "cut_test.csv.gz", whole.stat().st_size // 2)
    with pytest.raises(ValueError, match=_named(cut) + ": truncated"):
        read_test_csv(cut)


def test_truncated_gzip_exits_2_from_the_cli(shared, fer_sample, kaggle_dir, tmp_path, capsys):
    fer = _cut(shared / "data/fer2013/fer2013.csv.gz", tmp_path / "fer.csv.gz", 200_000)
    assert main(["eval", "expression", "--data", str(fer), "--split", "Training"]) == 2
    assert capsys.readouterr().err == (f"facecue: error: {fer}: truncated: the compressed data "
                                       "stops after line 77; copy or download the file again\n")
    test = _fer_test_csv(fer_sample, tmp_path / "test.csv.gz")
    lookup = _cut(kaggle_dir / "IdLookupTable.csv.gz", tmp_path / "lookup.csv.gz", 60_000)
    assert main(["submit", "keypoints", "--test", str(test), "--lookup", str(lookup),
                 "--out", str(tmp_path / "submission.csv")]) == 2
    assert f"facecue: error: {lookup}: truncated" in capsys.readouterr().err
    assert not (tmp_path / "submission.csv").exists()


# --- text that is not UTF-8 names the file and the line ---------------------------------------

def test_latin1_byte_in_fer2013_names_file_and_line(fer_sample, tmp_path, capsys):
    lines = fer_sample.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b"Training", b"Training\xe9")  # file line 6
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=_named(bad) + r": line 6: byte 0xe9 at column \d+ is "
                       r"not UTF-8 text \(save the file as UTF-8\)$"):
        read_fer2013(bad)
    data, report = read_fer2013(bad, skip_bad=True)
    assert report.skipped_lines == [6] and len(data) == 999 and 6 not in data.lines.tolist()
    assert main(["eval", "expression", "--data", str(bad), "--split", "Training"]) == 2
    assert f"facecue: error: {bad}: line 6: byte 0xe9" in capsys.readouterr().err


def test_latin1_byte_in_keypoint_files_names_file_and_line(kaggle_dir, yt68, tmp_path):
    with gzip.open(kaggle_dir / "IdLookupTable.csv.gz", "rb") as f:
        lines = f.read().split(b"\n")[:50]
    lines[4] = lines[4].replace(b"center", b"c\xe9nter")  # file line 5
    lookup = tmp_path / "IdLookupTable.csv.gz"
    lookup.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(ValueError, match=_named(lookup) + ": line 5: byte 0xe9 at column"):
        read_id_lookup(lookup)
    lines = (yt68 / "test_frames_keypoints.csv").read_bytes().split(b"\n")[:10]
    lines[3] = lines[3].replace(b".jpg", b"\xe9.jpg", 1)  # a Latin-1 file name, line 4
    (tmp_path / "test_frames_keypoints.csv").write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=r"test_frames_keypoints.csv: line 4: byte 0xe9"):
        read_landmarks68(tmp_path)


# --- other hostile but fair files -------------------------------------------------------------

def test_excel_resave_bom_crlf_and_blank_lines_read_alike(fer_sample, tmp_path):
    """Excel saves UTF-8 CSV with a byte-order mark and CRLF; a stray blank line at the end."""
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbf" + fer_sample.read_bytes().replace(b"\n", b"\r\n")
                      + b"\r\n")
    a, b = read_fer2013(fer_sample)[0], read_fer2013(excel)[0]
    assert np.array_equal(a.images, b.images) and np.array_equal(a.lines, b.lines)


def test_gzip_is_known_by_its_content_not_its_name(kaggle_dir, tmp_path):
    real = read_submission(kaggle_dir / "SampleSubmission.csv.gz")[0]
    unnamed = tmp_path / "SampleSubmission.csv"  # gzip data without .gz
    unnamed.write_bytes((kaggle_dir / "SampleSubmission.csv.gz").read_bytes())
    plain = tmp_path / "plain.csv.gz"  # text named .gz
    with gzip.open(kaggle_dir / "SampleSubmission.csv.gz", "rb") as f:
        plain.write_bytes(f.read())
    assert np.array_equal(read_submission(unnamed)[0], real)
    assert np.array_equal(read_submission(plain)[0], real)


def test_a_folder_given_as_a_csv_is_an_error(tmp_path, capsys):
    assert main(["eval", "expression", "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"facecue: error: {tmp_path} is a folder, expected a "
                                       "FER2013 CSV file\n")


def test_overlong_field_names_its_line(kaggle_dir, tmp_path):
    with gzip.open(kaggle_dir / "SampleSubmission.csv.gz", "rt") as f:
        lines = f.read().splitlines()[:20]
    lines[6] = '7,"' + "0" * 200_000 + '"'  # beyond the csv module's field limit
    path = tmp_path / "submission.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=_named(path) + ": line 7: field larger than field "
                       "limit"):
        read_submission(path)


@pytest.mark.parametrize("content, message", [
    (b"", r"test_frames_keypoints.csv: empty file, expected a header row"),
    (None, r"its \*_frames_keypoints.csv files list no images, only headers"),
])
def test_empty_or_header_only_68_point_folder(yt68, tmp_path, capsys, content, message):
    header = (yt68 / "test_frames_keypoints.csv").read_bytes().split(b"\n", 1)[0] + b"\n"
    (tmp_path / "test_frames_keypoints.csv").write_bytes(header if content is None else content)
    with pytest.raises(ValueError, match=message):
        read_landmarks68(tmp_path)
    out = tmp_path / "out.csv"
    assert main(["data", "from-68", str(tmp_path), "--out", str(out)]) == 2
    assert "facecue: error: " in capsys.readouterr().err and not out.exists()


def test_header_only_and_wrong_kaggle_files(kaggle_dir, fer_sample, tmp_path, capsys):
    """A keypoints file with no rows writes and reads back; a test.csv given where a
    training.csv belongs is refused with a short list of what is missing."""
    none = KeypointRows(np.zeros((0, 15, 2), np.float32), np.zeros((0, 96, 96), np.uint8))
    write_training_csv(tmp_path / "empty.csv", none)
    assert len(read_training_csv(tmp_path / "empty.csv")) == 0
    test = _fer_test_csv(fer_sample, tmp_path / "test.csv.gz")
    assert main(["eval", "keypoints", "--data", str(test)]) == 2
    assert capsys.readouterr().err == (
        f"facecue: error: {test}: line 1: header lacks column(s) ['left_eye_center_x', "
        "'left_eye_center_y', 'right_eye_center_x', 'right_eye_center_y'] and 26 more\n")


# --- counts the parser refuses ----------------------------------------------------------------

@pytest.mark.parametrize("command, option, value, least", [
    (["eval", "expression", "--data", "x.csv"], "--limit", "-1", 0),
    (["eval", "keypoints", "--data", "x.csv"], "--limit", "-1", 0),
    (["train", "expression", "--data", "x.csv", "--out", "o"], "--limit", "-1", 0),
    (["train", "expression", "--data", "x.csv", "--out", "o"], "--epochs", "0", 1),
    (["train", "expression", "--data", "x.csv", "--out", "o"], "--batch-size", "-8", 1),
    (["train", "expression", "--data", "x.csv", "--out", "o"], "--width", "0", 1),
    (["train", "expression", "--data", "x.csv", "--out", "o"], "--threads", "0", 1),
    (["train", "keypoints", "--data", "x.csv", "--out", "o"], "--batch-size", "2.5", 1),
    (["train", "keypoint-backbone", "--data", "x.csv", "--out", "o"], "--epochs", "-1", 1),
    (["label", "pseudo", "run", "--fer", "x.csv", "--out", "o.csv"], "--limit", "-1", 0),
])
def test_negative_and_zero_counts_are_refused(capsys, command, option, value, least):
    with pytest.raises(SystemExit) as e:
        main([*command, option, value])
    assert e.value.code == 2
    assert (f"error: argument {option}: {value!r} is not a whole number of at least {least}"
            in capsys.readouterr().err)


def test_negative_limit_refused_by_the_library(fer_sample):
    with pytest.raises(ValueError, match="limit must be 0 .every row. or more, not -1"):
        evaluate_expression(fer_sample, split="Training", limit=-1)
