"""End to end on a real GRID clip: face pipeline + speech recognition + fusion + captions."""

import csv
import json
import re

import pytest

pytest.importorskip("faster_whisper", reason="needs facecue[speech]")

from pipeline_support import model_args  # noqa: E402

from facecue.cli import main  # noqa: E402
from facecue.speech.audio import load_audio  # noqa: E402
from facecue.speech.segment import SpeechSegmenter  # noqa: E402
from facecue.speech.wer import wer  # noqa: E402


def test_grid_clip_caption_end_to_end(shared, tmp_path):
    videos = shared / "media/videos"
    with open(videos / "grid_transcripts.csv", newline="") as f:
        sentence = {r["file"]: r["sentence"] for r in csv.DictReader(f)}["grid_pwij3p.mpg"]
    clip = videos / "grid_pwij3p.mpg"
    out = tmp_path / "grid.json"
    assert main(["caption", str(clip), "--format", "json", "--out", str(out), *model_args()]) == 0
    data = json.loads(out.read_text())

    cues = data["cues"]
    words = " ".join(re.sub(r"\[[^\]]+\]", "", c["text"]) for c in cues)
    assert wer(sentence, words) == 0  # "place white in j three please", marks aside

    spans = [s for step in SpeechSegmenter().spans([load_audio(clip)]) for s in step]
    speech_start, speech_end = spans[0][0], spans[-1][0] + len(spans[-1][1]) / 16000
    assert all(speech_start - 0.05 <= c["start"] < c["end"] <= speech_end + 0.05 for c in cues)

    (u,) = data["utterances"]
    assert not u["no_face"] and u["speaker"] is not None  # the speaker's face was used
    assert abs(sum(u["probs"].values()) - 1) < 0.01 and u["emotion"] in {*u["probs"], "unknown"}
    voice = u["voice"]  # one utterance is its own baseline: usual voice, nothing to tag
    assert voice["arousal"] == 0.5 and voice["tags"] == [] and voice["loudness_db"] == 0
    assert 70 < voice["absolute"]["pitch"] < 200 and 1 < voice["absolute"]["rate"] < 5


GRID_WORDS = ("bin lay place set blue green red white at by in with a b c d e f g h i j k l m n o "
              "p q r s t u v x y z zero one two three four five six seven eight nine again now "
              "please soon")  # the GRID grammar's published word list


def test_vocabulary_steers_recognition_to_the_listed_words(shared, tmp_path):
    """Whisper base hears "lay blue at x four now" as "Lay blue, a text 4 now."; given the GRID
    word list as ``--vocabulary`` it writes the sentence."""
    clip = shared / "media/videos/grid_lbax4n.mpg"
    texts = []
    for extra in ([], ["--vocabulary", GRID_WORDS]):
        out = tmp_path / f"lbax4n{len(extra)}.json"
        assert main(["caption", str(clip), "--format", "json", "--out", str(out),
                     "--threads", "1", *model_args(), *extra]) == 0
        texts.append(" ".join(u["text"] for u in json.loads(out.read_text())["utterances"]))
    assert wer("lay blue at x four now", texts[0]) > 0
    assert wer("lay blue at x four now", texts[1]) == 0
