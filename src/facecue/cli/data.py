"""``facecue data from-68``: training data from 68-point landmark folders."""

from __future__ import annotations

import argparse

from facecue.cli import command


def add_commands(verbs: dict[str, argparse._SubParsersAction]) -> None:
    p = command(verbs["data"], "from-68", "68-point folder -> Kaggle-format 96x96 training.csv",
                "facecue data from-68 ../shared/data/youtube-faces-68 "
                "--out runs/yt68_keypoints.csv.gz", _from_68)
    p.add_argument("folder", help="folder with NAME_frames_keypoints.csv and NAME/ images")
    p.add_argument("--out", required=True, help="training.csv or training.csv.gz")


def _from_68(args: argparse.Namespace) -> int:
    from facecue.formats.landmarks68 import landmarks68_to_csv

    rows = landmarks68_to_csv(args.folder, args.out, progress=True)
    fallback = int((rows.extra["Fallback"] == "1").sum())
    print(f"{args.out}: {len(rows)} faces, {fallback} cut from the calibrated landmark box")
    return 0
