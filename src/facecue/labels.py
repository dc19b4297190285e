"""Label sets shared by data readers, models and the pipeline."""

from __future__ import annotations

# FER2013's own label ids.
FER2013_NAMES = ("anger", "disgust", "fear", "happiness", "sad", "surprise", "neutral")

# The vote columns of FER+ (Microsoft's fer2013new.csv), in file order: eight emotions, then
# "unknown" (the taggers could not tell) and "NF" (not a face).
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                   "contempt", "unknown", "NF")

# Each label set: class names in model-output order, and the FER2013 id each class comes from
# (None: a class FER2013's own labels do not have).
LABEL_SETS: dict[str, tuple[tuple[str, ...], tuple[int | None, ...]]] = {
    # The original five-class spec: {0: anger, 1: disgust, 2: sad, 3: happiness, 4: surprise}.
    "fer5": (("anger", "disgust", "sad", "happiness", "surprise"), (0, 1, 4, 3, 5)),
    "fer7": (FER2013_NAMES, (0, 1, 2, 3, 4, 5, 6)),
    # FER+'s eight emotions in its column order and spelling: FER2013's "sad" is "sadness";
    # contempt has no FER2013 class, so a fer7 model cannot give it, while a ferplus8 model
    # gives the fer7 classes through seven of its columns (contempt dropped).
    "ferplus8": (FERPLUS_COLUMNS[:8], (6, 3, 5, 4, 0, 1, 2, None)),
}

# The label set of the pipeline, captions and API when none is named (docs/models/expression.md
# states the rule by which ferplus8 may take this place).
DEFAULT_LABELS = "fer7"


def class_names(labels: str) -> tuple[str, ...]:
    """Class names of a label set, in model-output order."""
    return LABEL_SETS[_check(labels)][0]


def fer_to_class(labels: str) -> dict[int, int]:
    """Map FER2013 label id -> class index of ``labels``; ids not in the set are absent."""
    return {fer: i for i, fer in enumerate(LABEL_SETS[_check(labels)][1]) if fer is not None}


def class_columns(source: str, labels: str) -> list[int]:
    """Output columns of a ``source``-label model that give the classes of ``labels``, in
    order (a fer7 model serves fer5 through five of its columns, a ferplus8 model fer7
    through seven)."""
    ids = LABEL_SETS[_check(source)][1]
    names, need = LABEL_SETS[_check(labels)]
    missing = [name if i is None else i for name, i in zip(names, need, strict=True)
               if i not in ids]
    if missing:
        raise ValueError(f"label set {source} lacks FER classes {missing} needed for {labels}")
    return [ids.index(i) for i in need]


def _check(labels: str) -> str:
    if labels not in LABEL_SETS:
        raise ValueError(f"unknown label set {labels!r}; choose one of {sorted(LABEL_SETS)}")
    return labels


# The 15 Kaggle Facial Keypoints Detection keypoints, in training.csv column order
# ("left" is the subject's left, i.e. the image's right).
KEYPOINT_NAMES = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)
KEYPOINT_COLUMNS = tuple(f"{n}_{a}" for n in KEYPOINT_NAMES for a in ("x", "y"))
