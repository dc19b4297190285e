import gzip
import shutil

import numpy as np
import pytest

from facecue.formats.fer2013 import BadRowError, cross_split_duplicates, read_fer2013
from facecue.labels import class_names, fer_to_class


def test_reads_real_rows(fer_sample):
    data, report = read_fer2013(fer_sample)
    assert len(data) == 1000 and report.rows == 1000 and report.skipped == 0
    assert data.images.shape == (1000, 48, 48) and data.images.dtype == np.uint8
    assert {u: int((data.usage == u).sum()) for u in ("Training", "PublicTest", "PrivateTest")} \
        == {"Training": 600, "PublicTest": 200, "PrivateTest": 200}
    # The first rows of fer2013.csv are known: labels 0, 0, 2, 4; pixels start 70 80 82 72.
    assert data.labels[:4].tolist() == [0, 0, 2, 4]
    assert data.images[0, 0, :4].tolist() == [70, 80, 82, 72]
    assert data.lines[0] == 2


def test_gzip_and_plain_read_alike(fer_sample, tmp_path):
    gz = tmp_path / "sample.csv.gz"
    with open(fer_sample, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    a, _ = read_fer2013(fer_sample)
    b, _ = read_fer2013(gz)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)


def test_icml_face_data_variant(fer_sample, tmp_path):
    """icml_face_data.csv: columns emotion, ' Usage', ' pixels' with leading spaces."""
    rows = [line.rstrip("\n").split(",") for line in fer_sample.read_text().splitlines()][1:]
    icml = tmp_path / "icml_face_data.csv"
    icml.write_text("emotion, Usage, pixels\n"
                    + "".join(f"{e}, {u}, {p}\n" for e, p, u in rows))
    a, _ = read_fer2013(fer_sample)
    b, _ = read_fer2013(icml)
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.labels, b.labels) and list(a.usage) == list(b.usage)


@pytest.mark.parametrize("break_row, problem", [
    (lambda e, p, u: (e, p.rsplit(" ", 1)[0], u), "2303 values"),
    (lambda e, p, u: (e, "256" + p[p.index(" "):], u), "0-255"),
    (lambda e, p, u: (e, "x" + p[p.index(" "):], u), "'x' is not an integer"),
    (lambda e, p, u: ("9", p, u), "emotion 9"),
    (lambda e, p, u: ("happy", p, u), "not an integer"),
    (lambda e, p, u: (e, p, "Validation"), "Usage 'Validation'"),
])
def test_bad_row_names_its_line(fer_sample, tmp_path, break_row, problem):
    lines = fer_sample.read_text().splitlines()
    e, p, u = lines[3].split(",")
    lines[3] = ",".join(break_row(e, p, u))  # file line 4
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadRowError, match=rf"line 4: .*{problem}"):
        read_fer2013(bad)
    data, report = read_fer2013(bad, skip_bad=True)
    assert report.skipped == 1 and len(data) == 999 and "line 4" in report.problems[0]
    assert 4 not in data.lines.tolist()


def test_missing_column_and_file(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("emotion,pixels\n0,1 2\n")
    with pytest.raises(BadRowError, match="line 1: header lacks"):
        read_fer2013(f)
    with pytest.raises(FileNotFoundError):
        read_fer2013(tmp_path / "absent.csv")


def test_label_sets(fer_sample):
    assert class_names("fer5") == ("anger", "disgust", "sad", "happiness", "surprise")
    assert fer_to_class("fer5") == {0: 0, 1: 1, 4: 2, 3: 3, 5: 4}
    data, _ = read_fer2013(fer_sample)
    images, classes, keep = data.for_labels("fer5")
    assert not np.isin(data.labels[keep], [2, 6]).any()  # fear and neutral left out
    assert int(keep.sum()) == int((~np.isin(data.labels, [2, 6])).sum()) == len(images)
    names = [class_names("fer5")[c] for c in classes[:20]]
    fer_names = [class_names("fer7")[f] for f in data.labels[keep][:20]]
    assert names == fer_names
    with pytest.raises(ValueError, match="unknown label set"):
        class_names("fer6")


def test_cross_split_duplicates_found(fer_full):
    """FER2013 repeats some PrivateTest images in Training (SOURCE.md: 557 cross-Usage groups)."""
    dup = cross_split_duplicates(fer_full, "PrivateTest")
    assert len(dup) == 3589
    assert 100 < dup.sum() < 600
    train = {im.tobytes() for im in fer_full.split("Training").images}
    private = fer_full.split("PrivateTest").images
    assert all(private[i].tobytes() in train for i in np.flatnonzero(dup)[:20])
    assert not any(private[i].tobytes() in train for i in np.flatnonzero(~dup)[:50])
