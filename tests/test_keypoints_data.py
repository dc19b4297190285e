"""youtube-faces-68 -> Kaggle-format crops: the crop contract with the run-time pipeline, the
identity split, the fallback box and the Kaggle CSV reader/writer on real files."""

import gzip
from collections import Counter

import numpy as np
import pytest

from facecue.formats.kaggle_keypoints import (
    BadRowError,
    read_id_lookup,
    read_submission,
    read_test_csv,
    read_training_csv,
    write_submission,
    write_test_csv,
    write_training_csv,
)
from facecue.formats.landmarks68 import (
    FALLBACK_BOX,
    fit_box_calibration,
    identity,
    identity_split,
    keypoints15,
    match_detection,
    read_landmarks68,
)
from facecue.labels import KEYPOINT_COLUMNS
from facecue.video.sources import read_image
from facecue.vision.crop import KEYPOINTS_CROP, Crop, crop_face, to_gray
from facecue.vision.detect import HaarDetector


def test_reads_every_labelled_image(yt_items):
    assert len(yt_items) == 3723
    assert Counter(i.source.split("/")[0] for i in yt_items) == {"training": 3045, "test": 678}
    assert all(i.points.shape == (68, 2) for i in yt_items[:50])


def test_mapping_puts_subject_left_on_image_right(yt_items):
    k = keypoints15(np.stack([i.points for i in yt_items]))
    left_eye, right_eye = k[:, 0, 0], k[:, 1, 0]
    mouth_left, mouth_right = k[:, 11, 0], k[:, 12, 0]
    assert (left_eye > right_eye).mean() > 0.99
    assert (mouth_left > mouth_right).mean() > 0.99
    assert (k[:, 14, 1] > k[:, 13, 1]).mean() > 0.99  # bottom lip below top lip


def test_identity_split_is_by_person_and_about_80_10_10(yt_items):
    splits: dict[str, set[str]] = {}
    for i in yt_items:
        splits.setdefault(identity(i.source), set()).add(identity_split(identity(i.source)))
    assert all(len(s) == 1 for s in splits.values())
    # the source's test folder shows people of its training folder: same split for both
    assert identity("test/Luis_Fonsi_21.jpg") == identity("training/Luis_Fonsi_10.jpg")
    people = Counter(next(iter(s)) for s in splits.values())
    assert people == {"train": 253, "val": 25, "test": 27}
    images = Counter(identity_split(identity(i.source)) for i in yt_items)
    assert images == {"train": 3099, "val": 310, "test": 314}


def test_converter_crop_is_the_pipeline_crop(yt_sample):
    """Same detector, same box, same crop_face: the model trains on what it sees at run time;
    keypoints mapped back with Crop.to_source land on the original landmarks."""
    items, rows = yt_sample
    detector = HaarDetector()
    fallback = 0
    for k, item in enumerate(items):
        gray = to_gray(read_image(item.path))
        det = match_detection(detector(gray), item.points)
        box = tuple(float(v) for v in rows.extra["Box"][k].split())
        if det is None:
            fallback += 1
            assert rows.extra["Fallback"][k] == "1"
            assert np.allclose(box, FALLBACK_BOX.box(item.points), atol=0.01)
        else:
            assert rows.extra["Fallback"][k] == "0"
            assert box == det.box
        crop = crop_face(gray, det.box if det else FALLBACK_BOX.box(item.points),
                         KEYPOINTS_CROP)
        assert np.array_equal(crop.image, rows.images[k])
        back = Crop(rows.images[k], crop.x0, crop.y0, crop.side).to_source(rows.keypoints[k])
        assert np.abs(back - keypoints15(item.points)).max() < 1e-3
    assert fallback < len(items) // 4


def test_keypoints_sit_inside_the_crop_with_margin(yt_sample):
    _, rows = yt_sample
    assert rows.keypoints.min() > 5 and rows.keypoints.max() < 91


def test_fallback_box_matches_detector_framing(yt_items):
    """Refit the calibration on real detector boxes: the shipped constants agree."""
    detector = HaarDetector()
    pts, boxes = [], []
    for item in yt_items[5::40]:
        if identity_split(identity(item.source)) != "train":
            continue
        det = match_detection(detector(to_gray(read_image(item.path))), item.points)
        if det is not None:
            pts.append(item.points)
            boxes.append(det.box)
    fit = fit_box_calibration(pts, boxes)
    assert len(pts) > 50
    assert abs(fit.scale / FALLBACK_BOX.scale - 1) < 0.05
    assert abs(fit.dx - FALLBACK_BOX.dx) < 0.06 and abs(fit.dy - FALLBACK_BOX.dy) < 0.06


def test_bad_68_point_line_is_named(tmp_path, yt68):
    src = (yt68 / "test_frames_keypoints.csv").read_text().splitlines()
    src[3] = src[3].rsplit(",", 1)[0] + ",abc"
    (tmp_path / "test_frames_keypoints.csv").write_text("\n".join(src) + "\n")
    with pytest.raises(BadRowError, match=r"line 4: .*not a number"):
        read_landmarks68(tmp_path)


def test_training_csv_round_trip(yt_sample, tmp_path):
    rows = yt_sample[1].subset(np.arange(len(yt_sample[1])))  # a copy
    rows.keypoints[1, 3] = np.nan  # a missing keypoint survives the round trip as missing
    path = tmp_path / "training.csv.gz"
    write_training_csv(path, rows)
    back = read_training_csv(path)
    assert np.array_equal(back.images, rows.images)
    assert np.allclose(back.keypoints, rows.keypoints, atol=1e-4, equal_nan=True)
    assert np.isnan(back.keypoints[1, 3]).all()
    assert list(back.extra) == ["Source", "Identity", "Split", "Fallback", "Box"]
    assert (back.extra["Source"] == rows.extra["Source"]).all()


@pytest.mark.parametrize("field,value,message", [
    ("left_eye_center_x", "abc", r"line 3: left_eye_center_x 'abc' is not a number"),
    ("Image", "1 2 3", r"line 3: Image has 3 values, expected 9216"),
    ("Image", "300 " * 9216, r"line 3: pixel values must lie in 0-255"),
    ("nose_tip_y", "nan", r"line 3: nose_tip_y 'nan' is not a finite number"),
])
def test_bad_training_csv_line_is_named(yt_sample, tmp_path, field, value, message):
    _, rows = yt_sample
    path = tmp_path / "training.csv"
    write_training_csv(path, rows.subset(np.arange(3)))
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index(field)] = value
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadRowError, match=message):
        read_training_csv(path)


def test_short_row_and_missing_header(tmp_path):
    path = tmp_path / "training.csv"
    path.write_text(",".join(KEYPOINT_COLUMNS) + ",Image\n1,2\n")
    with pytest.raises(BadRowError, match=r"line 2: expected 31 fields, found 2"):
        read_training_csv(path)
    path.write_text("ImageId,Image\n")
    with pytest.raises(BadRowError, match=r"line 1: header lacks"):
        read_training_csv(path)


def test_real_keypoint_columns_statistics(kaggle_dir):
    """The real Kaggle keypoint columns (no images) read as SOURCE.md describes them."""
    rows = read_training_csv(kaggle_dir / "training_keypoints_only_NO_IMAGES.csv.gz",
                             require_image=False)
    assert len(rows) == 7049 and rows.images is None
    present = ~np.isnan(rows.keypoints[..., 0])
    assert int(present.all(1).sum()) == 2140
    assert present.sum(0).tolist() == [7039, 7036, 2271, 2267, 2268, 2268, 2270, 2225, 2270,
                                       2236, 7049, 2269, 2270, 2275, 7016]
    assert np.nanmin(rows.keypoints) > 0.68 and np.nanmax(rows.keypoints) < 96


def test_real_lookup_table_and_full_submission(kaggle_dir, yt_sample, tmp_path):
    """Predictions for all 1,783 test ImageIds (real crops cycled) fill every RowId of the real
    IdLookupTable, in SampleSubmission's order."""
    lookup = read_id_lookup(kaggle_dir / "IdLookupTable.csv.gz")
    assert len(lookup.row_ids) == 27124 and len(set(lookup.image_ids.tolist())) == 1783
    _, rows = yt_sample
    ids = np.arange(1, 1784)
    pred = rows.keypoints[np.arange(1783) % len(rows)]
    out = tmp_path / "submission.csv"
    write_submission(out, lookup, ids, pred)
    got_ids, got = read_submission(out)
    with gzip.open(kaggle_dir / "SampleSubmission.csv.gz", "rt") as f:
        sample_ids = [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]
    assert got_ids.tolist() == sample_ids == list(range(1, 27125))
    want = pred.reshape(1783, 30)[lookup.image_ids - 1, lookup.features]
    assert np.allclose(got, np.clip(want, 0, 96), atol=1e-4)
    with pytest.raises(ValueError, match="no prediction for 1 ImageId"):
        write_submission(out, lookup, ids[1:], pred[1:])


def test_test_csv_round_trip_and_bad_id(yt_sample, tmp_path):
    _, rows = yt_sample
    path = tmp_path / "test.csv"
    write_test_csv(path, np.arange(1, 6), rows.images[:5])
    ids, images = read_test_csv(path)
    assert ids.tolist() == [1, 2, 3, 4, 5] and np.array_equal(images, rows.images[:5])
    text = path.read_text().splitlines()
    text[4] = "x" + text[4]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(BadRowError, match=r"line 5: ImageId"):
        read_test_csv(path)


@pytest.mark.parametrize("name, reader, line, bad, message", [
    ("IdLookupTable.csv.gz", read_id_lookup, 7, "7,1,left_ear_x,", r"line 7: FeatureName"),
    ("IdLookupTable.csv.gz", read_id_lookup, 3, "two,1,nose_tip_x,", r"line 3: RowId/ImageId"),
    ("SampleSubmission.csv.gz", read_submission, 9, "8,far", r"line 9: not a RowId,Location"),
])
def test_real_lookup_and_submission_bad_rows_name_their_line(kaggle_dir, tmp_path, name, reader,
                                                             line, bad, message):
    """A spoilt row in a copy of the real IdLookupTable / SampleSubmission names its file line;
    the unspoilt copy reads whole."""
    with gzip.open(kaggle_dir / name, "rt") as f:
        text = f.read().splitlines()
    path = tmp_path / name.removesuffix(".gz")
    path.write_text("\n".join(text) + "\n")
    assert len(reader(path)[0] if reader is read_submission else reader(path).row_ids) == 27124
    text[line - 1] = bad
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(BadRowError, match=message):
        reader(path)
