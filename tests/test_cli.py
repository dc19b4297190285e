"""The command tree as a whole: one grammar with the old spellings as aliases, help with an
example for every command, messages on standard error under -v/-q, and files made with the
user's umask."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import stat

import cv2
import pytest
from pipeline_support import model_args

from facecue.captions.sentences import EMOTIONS
from facecue.cli import OLD_SPELLINGS, main, new_spelling, parser
from facecue.formats.kaggle_keypoints import (
    read_submission,
    read_training_csv,
    write_test_csv,
)
from facecue.vision.crop import KEYPOINTS_CROP, crop_face
from facecue.vision.detect import HaarDetector

CLIP = "media/videos/grid_pwij3p.mpg"  # "place white in j three please", one face


def commands(p: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(words, parser) of every command in the tree, groups left out."""
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, p
    for sub in subs:
        for name, child in sub.choices.items():
            yield from commands(child, (*path, name))


def test_every_command_shows_a_real_example_and_explains_every_option():
    tree = dict(commands(parser()))
    assert set(tree) == {
        ("run",), ("analyze",), ("demo",), ("caption",), ("say",),
        ("train", "expression"), ("train", "keypoints"), ("train", "keypoint-backbone"),
        ("eval", "expression"), ("eval", "keypoints"),
        ("ship", "expression"), ("ship", "keypoints"), ("label", "pseudo"), ("label", "blend"),
        ("data", "from-68"), ("submit", "keypoints"), ("doctor",), ("studio",), ("batch",)}
    for words, p in tree.items():
        head, example = p.epilog.split("\n  ")
        assert head == "example:" and example.startswith(f"facecue {' '.join(words)} ")
        argv = shlex.split(example.split(" > ")[0])[1:]
        assert parser().parse_args(argv).handler is p.get_default("handler")  # it parses
        for action in p._actions:
            assert action.help and action.help != argparse.SUPPRESS, (words, action.dest)
    say = tree[("say",)].format_help()
    assert "{" + ",".join(EMOTIONS) + "}" in say and "example:\n  facecue say" in say
    assert "--labels {fer5,fer7,ferplus8}" in tree[("analyze",)].format_help()


def test_old_spellings_map_to_commands_of_the_tree():
    tree = dict(commands(parser()))
    for old, new in OLD_SPELLINGS.items():
        assert new in tree
        assert new_spelling(["-q", *old, "RUN", "--x"]) == (["-q", *new, "RUN", "--x"], old)
    assert new_spelling(["ship", "keypoints", "RUN"]) == (["ship", "keypoints", "RUN"], None)


def test_new_and_old_spelling_write_the_same_submission(shared, lookup_subset, tmp_path, capsys):
    """`facecue submit keypoints` and its old spelling `facecue keypoints submit`, on three
    real faces cut as the pipeline cuts them."""
    photos = shared / "media/photos"
    crops = []
    for name in ("fr_obama.jpg", "fr_biden.jpg", "pyfeat_single_face.jpg"):
        gray = cv2.imread(str(photos / name), cv2.IMREAD_GRAYSCALE)
        crops.append(crop_face(gray, HaarDetector()(gray)[0].box, KEYPOINTS_CROP).image)
    test_csv = tmp_path / "test.csv"
    write_test_csv(test_csv, [1, 2, 3], crops)
    small, lookup, keep = lookup_subset(tmp_path, 3)
    files = {"new": ["submit", "keypoints"], "old": ["keypoints", "submit"]}
    said = {}
    for spelling, words in files.items():
        out = tmp_path / f"{spelling}.csv"
        assert main([*words, "--test", str(test_csv), "--lookup", str(small),
                     "--out", str(out)]) == 0
        said[spelling] = capsys.readouterr()
    assert (tmp_path / "new.csv").read_bytes() == (tmp_path / "old.csv").read_bytes()
    row_ids, locations = read_submission(tmp_path / "new.csv")
    assert row_ids.tolist() == lookup.row_ids[keep].tolist()
    assert ((locations > 0) & (locations < 96)).all()
    assert said["new"].out == f"{tmp_path / 'new.csv'}: 90 rows\n" and said["new"].err == ""
    assert said["old"].err == ("facecue: `facecue keypoints submit` is now `facecue submit "
                               "keypoints`; the old spelling goes in the next release\n")


def test_quiet_and_verbose(shared, tmp_path, capsys):
    clip = str(shared / "media/videos/grid_bbaf2n.mpg")
    run = ["run", clip, "--no-window", "--max-frames", "3", "--jsonl", str(tmp_path / "f.jsonl"),
           *model_args()]
    assert main(run) == 0
    assert "facecue: 3 frames (0 skipped)" in capsys.readouterr().err
    for quiet in (["-q", *run], [*run, "-q"]):  # before or after the command
        assert main(quiet) == 0
        assert capsys.readouterr().err == ""
    assert main(["-q", "run", str(tmp_path / "missing.mp4"), "--no-window", *model_args()]) == 2
    assert capsys.readouterr().err == f"facecue: error: source not found: {tmp_path}/missing.mp4\n"
    assert main(["-qq", "analyze", str(tmp_path / "missing.jpg"), *model_args()]) == 1
    assert "image not found" in capsys.readouterr().err  # an error still shows


def test_caption_prints_the_captions_unless_told_where_to_write(shared, tmp_path, capsys,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip = str(shared / CLIP)
    assert main(["caption", clip, "--format", "vtt", *model_args()]) == 0
    said = capsys.readouterr()
    assert said.out.startswith("WEBVTT") and "white" in said.out.lower()
    assert "facecue: speech recognition: Whisper base" in said.err
    assert list(tmp_path.iterdir()) == []  # nothing written behind the user's back
    assert main(["caption", clip, "--out", "grid.srt", *model_args()]) == 0
    said = capsys.readouterr()
    assert said.out == "" and "facecue: wrote grid.srt\n" in said.err
    assert "white" in (tmp_path / "grid.srt").read_text().lower()


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="apt-get install espeak-ng")
def test_say_writes_its_wav_with_the_users_umask(tmp_path, capsys):
    for umask, mode in ((0o027, 0o640), (0o002, 0o664)):
        out = tmp_path / f"umask{umask:o}.wav"
        old = os.umask(umask)
        try:
            assert main(["say", "Hello there.", "--emotion", "happiness", "--out", str(out)]) == 0
        finally:
            os.umask(old)
        assert stat.S_IMODE(out.stat().st_mode) == mode
        assert f"facecue: wrote {out}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["umask2.wav", "umask27.wav"]


def test_data_from_68_converts_a_real_folder(yt68, tmp_path, capsys):
    """Five real faces of youtube-faces-68, in a folder laid out like it."""
    folder = tmp_path / "yt"
    (folder / "test").mkdir(parents=True)
    lines = (yt68 / "test_frames_keypoints.csv").read_text().splitlines()[:6]
    (folder / "test_frames_keypoints.csv").write_text("\n".join(lines) + "\n")
    for line in lines[1:]:
        name = line.split(",")[0]
        shutil.copy(yt68 / "test" / name, folder / "test" / name)
    out = tmp_path / "training.csv"
    assert main(["data", "from-68", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{out}: 5 faces, ") and printed.endswith(
        " cut from the calibrated landmark box\n")
    rows = read_training_csv(out)
    assert rows.images.shape == (5, 96, 96) and rows.keypoints.shape == (5, 15, 2)
