import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACECUE_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only real data and media folder (``../shared`` beside the repo)."""
    if not SHARED.exists():
        pytest.fail(f"real test data not found at {SHARED}; set FACECUE_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def fer_csv(shared: Path) -> Path:
    return shared / "data" / "fer2013" / "fer2013.csv.gz"


@pytest.fixture(scope="session")
def fer_sample(fer_csv: Path, tmp_path_factory) -> Path:
    """A small real FER2013 CSV: the first 600 Training, 200 PublicTest, 200 PrivateTest rows."""
    import gzip

    want = {"Training": 600, "PublicTest": 200, "PrivateTest": 200}
    out = tmp_path_factory.mktemp("fer") / "fer_sample.csv"
    with gzip.open(fer_csv, "rt") as src, open(out, "w") as dst:
        dst.write(next(src))
        for line in src:
            usage = line.rstrip().rsplit(",", 1)[1]
            if want[usage] > 0:
                want[usage] -= 1
                dst.write(line)
            if not any(want.values()):
                break
    return out


@pytest.fixture(scope="session")
def fer_full(fer_csv: Path):
    from facecue.formats.fer2013 import read_fer2013

    return read_fer2013(fer_csv)[0]


@pytest.fixture(scope="session")
def kaggle_dir(shared: Path) -> Path:
    return shared / "data" / "kaggle-facial-keypoints"


@pytest.fixture(scope="session")
def yt68(shared: Path) -> Path:
    return shared / "data" / "youtube-faces-68"


@pytest.fixture(scope="session")
def yt_items(yt68):
    from facecue.formats.landmarks68 import read_landmarks68

    return read_landmarks68(yt68)


@pytest.fixture(scope="session")
def yt_sample(yt_items):
    """A fixed sample of 48 real images, converted, with their source items."""
    from facecue.formats.landmarks68 import convert_landmarks68

    items = yt_items[::78]
    return items, convert_landmarks68(items)


@pytest.fixture(scope="session")
def lookup_subset(kaggle_dir):
    """``make(folder, n)``: the real IdLookupTable cut to images 1..n, written to
    ``folder/IdLookupTable.csv``; returns (path, the whole lookup, the rows kept)."""
    from facecue.formats.kaggle_keypoints import KEYPOINT_COLUMNS, read_id_lookup

    lookup = read_id_lookup(kaggle_dir / "IdLookupTable.csv.gz")

    def make(folder: Path, n: int):
        keep = lookup.image_ids <= n
        path = folder / "IdLookupTable.csv"
        path.write_text("RowId,ImageId,FeatureName,Location\n" + "".join(
            f"{r},{i},{KEYPOINT_COLUMNS[f]},\n" for r, i, f in
            zip(lookup.row_ids[keep], lookup.image_ids[keep], lookup.features[keep],
                strict=True)))
        return path, lookup, keep

    return make
