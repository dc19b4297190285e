"""Keypoint training on real crops: flip, warp and masked loss, a tiny Kaggle CSV round trip
(train -> ONNX -> submission), kill-and-resume, and ONNX parity."""

import json
import shlex

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from onnx_support import float_convs  # noqa: E402

import facecue.train.keypoints as tk  # noqa: E402
from facecue.cli import main  # noqa: E402
from facecue.formats.kaggle_keypoints import (  # noqa: E402
    read_submission,
    read_training_csv,
    write_test_csv,
    write_training_csv,
)
from facecue.labels import KEYPOINT_NAMES  # noqa: E402
from facecue.train.augment import (  # noqa: E402
    FLIP_ORDER,
    augment_keypoints,
    hflip,
    random_affine,
    warp,
    warp_points,
)
from facecue.train.backbone import (  # noqa: E402
    fer_as_keypoint_crops,
    fer_face_box,
    load_initial_weights,
)
from facecue.train.export import export_onnx  # noqa: E402
from facecue.train.lineage import elapsed_on_cores  # noqa: E402
from facecue.train.losses import masked_loss, point_loss  # noqa: E402
from facecue.train.models import KeypointNet  # noqa: E402
from facecue.train.teacher import blend_labels  # noqa: E402
from facecue.vision.runtime import KeypointModel  # noqa: E402

TINY = ["--epochs", "1", "--limit", "24", "--width", "4", "--batch-size", "8",
        "--threads", "1"]


@pytest.fixture(scope="module")
def crops(yt_sample):
    _, rows = yt_sample
    return torch.from_numpy(rows.images.astype(np.float32))[:, None], \
        torch.from_numpy(rows.keypoints)


@pytest.fixture(scope="module")
def train_csv(yt_sample, tmp_path_factory):
    """A real-image training.csv with only Kaggle's columns (30 keypoints + Image)."""
    _, rows = yt_sample
    rows = rows.subset(np.arange(len(rows)))
    rows.extra = {}
    rows.keypoints[::3, 2:10] = np.nan  # Kaggle-style missing keypoints
    path = tmp_path_factory.mktemp("kp") / "training.csv"
    write_training_csv(path, rows)
    return path


def test_flip_twice_is_identity_and_swaps_sides(crops):
    x, k = crops
    fx, fk = hflip(x, k)
    xx, kk = hflip(fx, fk)
    assert torch.equal(xx, x) and torch.allclose(kk, k)
    left, right = KEYPOINT_NAMES.index("left_eye_center"), KEYPOINT_NAMES.index("right_eye_center")
    assert torch.allclose(fk[:, left, 0], 96 - k[:, right, 0])
    assert (fk[:, left, 0] > fk[:, right, 0]).all()  # subject's left stays on the image right
    assert sorted(FLIP_ORDER) == list(range(15))


def test_warped_points_follow_the_pixels(crops):
    """A bright dot at a keypoint lands where warp_points says, for a random affine warp."""
    x, k = crops
    gen = torch.Generator().manual_seed(0)
    theta = random_affine(8, gen, rotate_deg=15, scale=0.1, shift=0.05, flip=False)
    dots = torch.zeros(8, 1, 96, 96)
    px = k[:8, 10].round().long()  # nose tips
    dots[torch.arange(8), 0, px[:, 1], px[:, 0]] = 255.0
    moved = warp_points(px[:, None].float() + 0.5, theta)[:, 0]  # pixel centres
    out = warp(dots, theta)[:, 0]
    peak = out.flatten(1).argmax(1)
    got = torch.stack([peak % 96, peak // 96], 1).float() + 0.5
    assert (got - moved).abs().max() <= 1.0


def test_cutout_blanks_pixels_but_keeps_the_keypoints(crops):
    x, k = crops
    plain = augment_keypoints(x, k, torch.Generator().manual_seed(0), cutout_prob=0.0)
    cut = augment_keypoints(x, k, torch.Generator().manual_seed(0), cutout_prob=1.0)
    assert torch.equal(plain[1], cut[1])  # the targets under the blank stay where they were
    changed = (plain[0] != cut[0]).flatten(1).any(1)
    assert changed.float().mean() > 0.5
    assert ((cut[0] == 128.0) | (cut[0] == plain[0])).all()


def test_masked_loss_ignores_missing():
    pred = torch.randn(4, 30, requires_grad=True)
    target = torch.randn(4, 30)
    target[1, :10] = float("nan")
    target[3] = float("nan")
    loss = masked_loss(pred, target)
    present = ~torch.isnan(target)
    want = torch.nn.functional.smooth_l1_loss(pred[present], target[present])
    assert torch.allclose(loss, want)
    loss.backward()
    assert (pred.grad[~present] == 0).all() and (pred.grad[present] != 0).any()
    assert float(masked_loss(pred, torch.full((4, 30), float("nan")))) == 0.0


def test_kaggle_round_trip_train_predict_submit(train_csv, yt_sample, lookup_subset, tmp_path):
    """training.csv -> train -> ONNX -> test.csv -> submission for the real lookup table,
    filtered to the ImageIds we have."""
    run = tmp_path / "run"
    assert main(["train", "keypoints", "--data", str(train_csv), "--out", str(run), *TINY]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"val"}  # no identity split: held-back rows only
    assert metrics["metrics"]["val"]["n"] == metrics["meta"]["val_rows"] > 0
    _, rows = yt_sample
    ids = np.arange(1, 11)
    test_csv = tmp_path / "test.csv"
    write_test_csv(test_csv, ids, rows.images[:10])
    small, lookup, keep = lookup_subset(tmp_path, 10)
    out = tmp_path / "submission.csv"
    assert main(["submit", "keypoints", "--test", str(test_csv), "--lookup", str(small),
                 "--out", str(out), "--model", str(run / "keypoints15.onnx")]) == 0
    row_ids, loc = read_submission(out)
    assert row_ids.tolist() == lookup.row_ids[keep].tolist()
    pred = KeypointModel.load(run / "keypoints15.onnx").predict(rows.images[:10])
    want = np.clip(pred.reshape(10, 30)[lookup.image_ids[keep] - 1, lookup.features[keep]],
                   0, 96)
    assert np.allclose(loc, want, atol=1e-3)


def test_point_loss_is_the_mean_point_distance_over_present_points():
    pred = torch.zeros(2, 30, requires_grad=True)
    target = torch.zeros(2, 30)
    target[0, 0:2] = torch.tensor([3.0, 4.0])  # point 0 of face 0 is 5 px off
    target[1, 2:4] = float("nan")  # point 1 of face 1 is missing
    loss = point_loss(pred, target)
    # 29 present points; each distance carries the loss's 1e-6 px^2 smoothing
    assert float(loss) == pytest.approx((25 + 1e-6) ** 0.5 / 29 + 28 * 1e-3 / 29, rel=1e-5)
    loss.backward()
    assert (pred.grad[1, 2:4] == 0).all()
    assert pred.grad[0, 0] < 0 and pred.grad[0, 1] < 0  # pulled toward (3, 4)
    assert float(point_loss(pred, torch.full((2, 30), float("nan")))) == 0.0


def test_weight_average_leaves_training_alone_and_resumes(train_csv, tmp_path, monkeypatch):
    """--ema keeps a moving average beside the run: the trained weights come out exactly as
    without it, the average is scored every epoch and saved, and survives a resume."""
    args = dict(data=str(train_csv), epochs=2, batch_size=8, width=4, limit=24, threads=1,
                loss="point")
    tk.train_keypoints(out=str(tmp_path / "plain"), **args)
    tk.train_keypoints(out=str(tmp_path / "ema"), ema=0.9, **args)
    plain = torch.load(tmp_path / "plain" / "last.pt", weights_only=False)
    ema = torch.load(tmp_path / "ema" / "last.pt", weights_only=False)
    for key, value in plain["model"].items():
        assert torch.equal(value, ema["model"][key]), key
    average = torch.load(tmp_path / "ema" / "ema.pt")
    assert any(not torch.equal(v, ema["model"][k]) for k, v in average.items())
    history = json.loads((tmp_path / "ema" / "history.json").read_text())["history"]
    assert all(0 < row["ema_val_nme"] < 1 for row in history)

    real = tk._batches
    monkeypatch.setattr(tk, "_batches", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt)
                        if a[4] == 2 else real(*a))
    with pytest.raises(KeyboardInterrupt):
        tk.train_keypoints(out=str(tmp_path / "cut"), ema=0.9, **args)
    monkeypatch.setattr(tk, "_batches", real)
    tk.train_keypoints(out=str(tmp_path / "cut"), ema=0.9, resume=True, **args)
    resumed = torch.load(tmp_path / "cut" / "ema.pt")
    for key, value in average.items():
        assert torch.equal(value, resumed[key]), key


def test_resume_after_interruption_matches_uninterrupted_run(train_csv, tmp_path, monkeypatch):
    args = dict(data=str(train_csv), epochs=2, batch_size=8, width=4, limit=24, threads=1)
    tk.train_keypoints(out=str(tmp_path / "a"), **args)

    real = tk._batches

    def dies_in_epoch_2(*args):
        if args[4] == 2:  # the epoch
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(tk, "_batches", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        tk.train_keypoints(out=str(tmp_path / "b"), **args)
    monkeypatch.setattr(tk, "_batches", real)
    tk.train_keypoints(out=str(tmp_path / "b"), resume=True, **args)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["state"]["epoch"] == b["state"]["epoch"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


@pytest.mark.parametrize("head", [{}, {"context_head": True, "fine_heatmaps": True}])
def test_onnx_export_matches_torch(yt_sample, tmp_path, head):
    _, rows = yt_sample
    torch.manual_seed(0)
    net = KeypointNet(width=8, **head).eval()
    path = tmp_path / "kp.onnx"
    diff = export_onnx(net, 96, path, check_inputs=rows.images[:8])
    assert diff < 1e-3
    got = KeypointModel.load(path).predict(rows.images[:8])
    with torch.no_grad():
        want = net(torch.from_numpy(rows.images[:8].astype(np.float32))[:, None]).numpy()
    assert got.shape == (8, 15, 2) and np.allclose(got.reshape(8, 30), want, atol=1e-3)


def test_ship_builds_the_mean_of_runs_and_an_honest_int8_card(yt_sample, tmp_path):
    """Two tiny real runs -> `ship keypoints`: the float build is the mean of the members,
    the int8 build stays close to it, and its card's figures are the file's own."""
    from facecue.evaluation.evaluate import evaluate_keypoints
    from facecue.fileio import file_sha256

    _, rows = yt_sample
    data = tmp_path / "yt.csv"
    write_training_csv(data, rows)  # keeps the identity Split column
    runs = []
    for seed, options in (("0", []), ("1", ["--context-head", "--fine-heatmaps",
                                            "--cutout-prob", "0.5"])):
        runs.append(tmp_path / f"run{seed}")
        assert main(["train", "keypoints", "--data", str(data), "--out", str(runs[-1]),
                     "--epochs", "2", "--width", "4", "--batch-size", "8", "--threads", "1",
                     "--seed", seed, *options]) == 0
    assert main(["ship", "keypoints", *map(str, runs), "--weights", str(tmp_path / "float"),
                 "--no-quantize"]) == 0
    assert main(["ship", "keypoints", *map(str, runs), "--weights", str(tmp_path / "int8")]) == 0

    x = torch.from_numpy(rows.images.astype(np.float32))[:, None]
    want = 0
    for run in runs:
        meta = json.loads((run / "metrics.json").read_text())["meta"]
        net = KeypointNet(**tk.net_options(meta))  # the second run has the other heads
        net.load_state_dict(torch.load(run / "best.pt"))
        with torch.no_grad():
            want = want + net.eval()(x).numpy().reshape(-1, 15, 2) / 2
    got = KeypointModel.load(tmp_path / "float" / "keypoints15.onnx").predict(rows.images)
    np.testing.assert_allclose(got, want, atol=1e-3)
    path = tmp_path / "int8" / "keypoints15.onnx"
    q = KeypointModel.load(path).predict(rows.images)
    assert np.abs(q - got).mean() < 0.5  # pixels at 96x96
    assert float_convs(path, tmp_path) == []  # the fine maps' branching conv included

    card = json.loads((tmp_path / "int8" / "keypoints15.json").read_text())
    assert card["sha256"] == file_sha256(path)
    assert [m["seed"] for m in card["members"]] == [0, 1] and "int8" in card["architecture"]
    report = evaluate_keypoints(rows, split="test", model=path)
    assert card["metrics"]["test"]["n"] == report["n"] > 0
    assert card["metrics"]["test"]["nme"] == pytest.approx(report["nme"], abs=1e-6)
    # ... and its float32 build beside it, with the figures of that file
    twin = tmp_path / "int8" / "keypoints15.float32.onnx"
    twin_card = json.loads((tmp_path / "int8" / "keypoints15.float32.json").read_text())
    assert twin_card["sha256"] == file_sha256(twin)
    assert twin_card["build"]["from"] == {"file": path.name, "sha256": card["sha256"]}
    assert twin_card["metrics"]["test"]["nme"] == pytest.approx(
        evaluate_keypoints(rows, split="test", model=twin)["nme"], abs=1e-6)
    assert np.abs(KeypointModel.load(twin).predict(rows.images) - q).mean() < 0.2
    assert not (tmp_path / "float" / "keypoints15.float32.onnx").exists()  # nothing to twin
    # ... and the int8 build with 7-bit weights, exact here without the option
    seven = tmp_path / "int8" / "keypoints15.int8w7.onnx"
    seven_card = json.loads(seven.with_suffix(".json").read_text())
    assert seven_card["sha256"] == file_sha256(seven)
    assert seven_card["onnxruntime"]["session_config"] == {}
    assert seven_card["metrics"]["test"]["nme"] == pytest.approx(
        evaluate_keypoints(rows, split="test", model=seven)["nme"], abs=1e-6)


def test_final_refit_with_val_trains_on_val_keeps_the_last_epoch_and_says_so(yt_sample,
                                                                            tmp_path):
    _, rows = yt_sample
    data = tmp_path / "yt.csv"
    write_training_csv(data, rows)
    split = rows.extra["Split"]
    run = tmp_path / "refit"
    argv = ["train", "keypoints", "--data", str(data), "--out", str(run), "--with-val",
            "--epochs", "3", "--width", "4", "--batch-size", "8", "--threads", "1", "--plots"]
    assert main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["meta"]["command"] == shlex.join(["facecue", *argv])  # not pytest's argv
    assert metrics["meta"]["train_rows"] == int(np.isin(split, ["train", "val"]).sum())
    assert metrics["meta"]["val_rows"] == int((split == "val").sum()) > 0
    assert metrics["best_epoch"] == 3 and set(metrics["metrics"]) == {"val_trained_on"}
    history = json.loads((run / "history.json").read_text())["history"]
    assert all("val_trained_on_nme" in h and "val_nme" not in h for h in history)
    assert (run / "plots" / "training_curves.png").stat().st_size > 0
    last = torch.load(run / "last.pt", weights_only=False)["model"]
    best = torch.load(run / "best.pt")
    assert all(torch.equal(best[k], v) for k, v in last.items())

    assert main(["ship", "keypoints", str(run), "--weights", str(tmp_path / "w"),
                 "--no-quantize"]) == 0
    card = json.loads((tmp_path / "w" / "keypoints15.json").read_text())
    assert set(card["metrics"]) == {"val_trained_on", "test"}
    assert "refit on train + val" in card["data"]["split"]
    assert card["members"][0]["val"] is None


def test_blend_labels_relabels_only_the_named_splits(yt_sample, tmp_path):
    """Real faces, a tiny real teacher: train rows become the blend, a missing keypoint the
    teacher's own, val and test rows stay as they were; the card of a student names it."""
    rows = yt_sample[1].subset(np.ones(len(yt_sample[1]), bool))  # a copy, to change
    split = rows.extra["Split"]
    train = split == "train"
    first = int(np.flatnonzero(train)[0])
    rows.keypoints[first, 3] = np.nan  # a missing keypoint, as in the Kaggle data
    data = tmp_path / "yt.csv"
    write_training_csv(data, rows)
    teacher = tmp_path / "teacher"
    assert main(["train", "keypoints", "--data", str(data), "--out", str(teacher),
                 "--epochs", "1", "--width", "4", "--batch-size", "8", "--threads", "1"]) == 0
    out = tmp_path / "blend.csv"
    argv = ["label", "blend", str(teacher), "--data", str(data), "--out", str(out),
            "--weight", "0.25"]
    assert main(argv) == 0
    got, rows = read_training_csv(out), read_training_csv(data)  # as written, rounded
    assert train.any() and (~train).any()
    np.testing.assert_array_equal(got.keypoints[~train], rows.keypoints[~train])
    np.testing.assert_array_equal(got.images, rows.images)
    net = KeypointNet(**tk.net_options(json.loads((teacher / "metrics.json").read_text())
                                       ["meta"]))
    net.load_state_dict(torch.load(teacher / "best.pt"))
    taught = tk.predict(net.eval(), rows.images[train])
    want = 0.25 * rows.keypoints[train] + 0.75 * taught
    want[0, 3] = taught[0, 3]  # the first train row
    assert np.isnan(rows.keypoints[first, 3]).all() and not np.isnan(want).any()
    np.testing.assert_allclose(got.keypoints[train], want, atol=1e-3)
    record = json.loads((tmp_path / "blend.csv.json").read_text())
    assert record["command"] == shlex.join(["facecue", *argv])
    assert record["splits"] == ["train"] and record["teachers"] == [str(teacher)]
    with pytest.raises(ValueError, match="held out"):
        blend_labels([teacher], str(data), tmp_path / "x.csv", ["train", "test"])

    student = tmp_path / "student"
    assert main(["train", "keypoints", "--data", str(out), "--out", str(student),
                 "--epochs", "1", "--width", "4", "--batch-size", "8", "--threads", "1"]) == 0
    assert main(["ship", "keypoints", str(student), "--weights", str(tmp_path / "w"),
                 "--no-quantize"]) == 0
    card = json.loads((tmp_path / "w" / "keypoints15.json").read_text())
    assert card["data"]["relabelled_with"] == record["command"]
    assert card["data"]["prepared_with"].endswith(f"--out {data}")
    assert {s["step"] for s in card["training_steps"]} >= {str(teacher), str(student)}


def test_fer_pretraining_crops_are_framed_like_the_pipelines_keypoint_crops(fer_full):
    """Real PublicTest faces in a larger scene, found by the Haar detector and cut with
    KEYPOINTS_CROP, cover the same region of the face as the pretraining crops do."""
    import cv2

    from facecue.vision.crop import KEYPOINTS_CROP, crop_face
    from facecue.vision.detect import HaarDetector

    faces = fer_full.split("PublicTest").images[:300]
    detector, regions = HaarDetector(), []
    for face in faces:
        scene = cv2.copyMakeBorder(cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC),
                                   64, 64, 64, 64, cv2.BORDER_REPLICATE)
        found = detector(scene)
        if found:
            c = crop_face(scene, found[0].box, KEYPOINTS_CROP)
            regions.append(((c.x0 - 64) / 192, (c.y0 - 64) / 192, c.side / 192))
    assert len(regions) > 200
    ours = crop_face(faces[0], fer_face_box(48), KEYPOINTS_CROP)
    np.testing.assert_allclose((ours.x0 / 48, ours.y0 / 48, ours.side / 48),
                               np.median(regions, axis=0), atol=0.02)
    crops = fer_as_keypoint_crops(faces[:4])
    assert crops.shape == (4, 96, 96) and crops.dtype == np.uint8
    assert np.array_equal(crops[0], ours.image)


def test_backbone_pretrained_on_fer_starts_keypoint_training(fer_sample, train_csv, tmp_path):
    """`train keypoint-backbone` on real FER rows -> its conv stages load into a KeypointNet of
    the same width (and refuse another width) -> `train keypoints --init` records it."""
    from facecue.fileio import file_sha256

    bb = tmp_path / "bb"
    assert main(["train", "keypoint-backbone", "--data", str(fer_sample), "--out", str(bb),
                 "--epochs", "1", "--width", "4", "--limit", "64", "--threads", "1"]) == 0
    state = torch.load(bb / "best.pt")
    net = KeypointNet(width=4)
    load_initial_weights(net, bb / "best.pt")
    for key, value in net.features.state_dict().items():
        assert torch.equal(value, state[f"features.{key}"]), key
    with pytest.raises(ValueError, match="width"):
        load_initial_weights(KeypointNet(width=8), bb / "best.pt")
    run = tmp_path / "run"
    assert main(["train", "keypoints", "--data", str(train_csv), "--out", str(run), *TINY,
                 "--init", str(bb / "best.pt")]) == 0
    meta = json.loads((run / "metrics.json").read_text())["meta"]
    assert meta["init"]["sha256"] == file_sha256(bb / "best.pt")


def test_pseudo_labels_teach_a_student_that_starts_from_a_run(fer_sample, train_csv, tmp_path):
    """`label pseudo` writes real FER faces with the runs' mean keypoints as a
    Kaggle CSV; a student trains on it, and `--init` carries every weight of its best.pt into
    the next run (another width is refused)."""
    from facecue.formats.fer2013 import read_fer2013
    from facecue.formats.kaggle_keypoints import read_training_csv

    teachers = [tmp_path / "t0", tmp_path / "t1"]
    for seed, run in enumerate(teachers):
        assert main(["train", "keypoints", "--data", str(train_csv), "--out", str(run), *TINY,
                     "--seed", str(seed)]) == 0
    pseudo = tmp_path / "pseudo.csv.gz"
    assert main(["label", "pseudo", *map(str, teachers), "--fer", str(fer_sample),
                 "--out", str(pseudo), "--limit", "40"]) == 0
    rows = read_training_csv(pseudo)
    faces = read_fer2013(fer_sample)[0].split("Training").images[:40]
    assert np.array_equal(rows.images, fer_as_keypoint_crops(faces))
    want = 0
    for run in teachers:
        net = KeypointNet(width=4)
        net.load_state_dict(torch.load(run / "best.pt"))
        want = want + tk.predict(net.eval(), rows.images) / 2
    np.testing.assert_allclose(rows.keypoints, want, atol=1e-3)  # CSV keeps 4 decimals

    student = tmp_path / "student"
    assert main(["train", "keypoints", "--data", str(pseudo), "--out", str(student), *TINY]) == 0
    net = KeypointNet(width=4)
    load_initial_weights(net, student / "best.pt")
    for key, value in torch.load(student / "best.pt").items():
        assert torch.equal(net.state_dict()[key], value), key
    with pytest.raises(ValueError, match="conv stages"):
        load_initial_weights(KeypointNet(width=8), student / "best.pt")
    other_heads = KeypointNet(width=4, context_head=True, fine_heatmaps=True)
    fresh = {k: v.clone() for k, v in other_heads.state_dict().items()}
    load_initial_weights(other_heads, student / "best.pt")  # conv stages only
    for key, value in other_heads.state_dict().items():
        assert torch.equal(value, torch.load(student / "best.pt")[key] if
                           key.startswith("features.") else fresh[key]), key
    ft = tmp_path / "ft"
    assert main(["train", "keypoints", "--data", str(train_csv), "--out", str(ft),
                 *TINY, "--init", str(student / "best.pt")]) == 0
    assert main(["ship", "keypoints", str(ft), "--weights", str(tmp_path / "w"),
                 "--no-quantize"]) == 0
    card = json.loads((tmp_path / "w" / "keypoints15.json").read_text())
    steps = card["training_steps"]  # every step behind the model, upstream first, each once
    assert [s["step"] for s in steps] == [str(teachers[0]), str(teachers[1]),
                                          f"teacher labels {pseudo}", str(student), str(ft)]
    made = json.loads(pseudo.with_name(pseudo.name + ".json").read_text())
    assert steps[2]["seconds"] == made["seconds"] and made["teachers"] == list(map(str, teachers))
    assert [s["after"] for s in steps] == [[], [], list(map(str, teachers)),
                                           [f"teacher labels {pseudo}"], [str(student)]]
    seconds = [s["seconds"] for s in steps]
    assert card["training_minutes_one_after_another"] == round(sum(seconds) / 60, 1)
    # two cores: the teachers side by side, then labelling, student and fine-tuning in turn
    assert card["training_wall_time_minutes"] == round((max(seconds[:2]) + sum(seconds[2:]))
                                                       / 60, 1)


def test_elapsed_on_cores_waits_for_inputs_and_a_free_core():
    """Two cores: a and b start together, c follows b on b's core, d waits for a (10 s)
    although a core is free at 7 s; one core runs everything in turn."""
    steps = [{"step": "a", "seconds": 10.0}, {"step": "b", "seconds": 4.0},
             {"step": "c", "seconds": 3.0, "after": ["b"]},
             {"step": "d", "seconds": 5.0, "after": ["a", "c"]}]
    assert elapsed_on_cores(steps) == 15.0
    assert elapsed_on_cores(steps, cores=1) == 22.0
    assert elapsed_on_cores([]) == 0.0


def test_member_selection_scores_best_last_and_averaged_weights(yt_sample, tmp_path):
    """scripts/select_keypoint_members.py on two real runs: one line per run and per pair, for
    the exported best epoch, the last epoch or the weight average, each the val figure of
    those weights (the pair: the mean of the two runs' keypoints)."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    from facecue.evaluation.metrics import keypoint_report

    _, rows = yt_sample
    data = tmp_path / "yt.csv"
    write_training_csv(data, rows)
    runs = [tmp_path / f"run{seed}" for seed in (0, 1)]
    for seed, run in enumerate(runs):
        assert main(["train", "keypoints", "--data", str(data), "--out", str(run), "--epochs",
                     "2", "--width", "4", "--batch-size", "8", "--threads", "1", "--ema",
                     "0.9", "--seed", str(seed)]) == 0
    script = Path(__file__).parents[1] / "scripts" / "select_keypoint_members.py"
    val = rows.split("val")

    def points(run, weights):
        net = KeypointNet(**tk.net_options(json.loads((run / "metrics.json").read_text())["meta"]))
        state = torch.load(run / "last.pt", weights_only=False)["model"] \
            if weights == "last" else torch.load(run / "ema.pt")
        net.load_state_dict(state)
        return tk.predict(net.eval(), val.images)

    for weights in ("best", "last", "ema"):
        out = subprocess.run([sys.executable, str(script), "--runs", *map(str, runs),
                              "--weights", weights], capture_output=True, text=True,
                             check=True).stdout
        nme = dict(re.findall(r"  (\S+(?: \+ \S+)?): RMSE [\d.]+, NME ([\d.]+)", out))
        assert list(nme) == ["run0", "run1", "run0 + run1"]
        if weights == "best":
            want = KeypointModel.load(runs[0] / "keypoints15.onnx").predict(val.images)
            assert float(nme["run0"]) == pytest.approx(keypoint_report(want, val.keypoints)["nme"],
                                                       abs=1e-5)
        else:
            pair = (points(runs[0], weights) + points(runs[1], weights)) / 2
            assert float(nme["run0 + run1"]) == pytest.approx(
                keypoint_report(pair, val.keypoints)["nme"], abs=1e-5)
