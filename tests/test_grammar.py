"""Grammar-constrained recognition: the grammar file format, and reading real speech with it."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from facecue.speech.grammar import Grammar, GrammarError, spellings

GRID_GRAMMAR = Path(__file__).resolve().parents[1] / "examples/grid.grammar"


def test_grammar_file_format():
    g = Grammar.parse("# a comment\n\nturn | go\n left | right|straight on \n")
    assert g.slots == (("turn", "go"), ("left", "right", "straight on"))
    assert g.words == "turn go left right straight on"
    grid = Grammar.read(GRID_GRAMMAR)
    assert [len(s) for s in grid.slots] == [4, 4, 4, 25, 10, 4]  # GRID: no "w"
    assert len(grid.words.split()) == 51


@pytest.mark.parametrize("text, where", [("a | b\nc || d\n", "line 2"), ("# only\n", "no slots")])
def test_bad_grammar_names_the_problem(text, where):
    with pytest.raises(GrammarError, match=where):
        Grammar.parse(text, "g.txt")


def test_spellings_cover_case_and_digits():
    assert spellings("three") == {"three", "Three", "THREE", "3"}
    assert spellings("j") == {"j", "J"}


def _in_grammar(words: list[str], grammar: Grammar) -> bool:
    return len(words) == len(grammar.slots) and all(
        w in slot for w, slot in zip(words, grammar.slots, strict=True))


@pytest.fixture(scope="module")
def grid_transcriber():
    pytest.importorskip("faster_whisper", reason="needs facecue[speech]")
    from facecue.speech.transcribe import Transcriber

    return Transcriber(cpu_threads=2, grammar=Grammar.read(GRID_GRAMMAR))


def test_grammar_reads_a_grid_sentence_whisper_mishears(shared, tmp_path):
    """As is, Whisper base writes "bin blue at f two now" as "Bimble F tuner" (5 of 6 words
    wrong); read with the GRID grammar, the caption is a GRID sentence with at most one
    wrong word, timed inside the clip's speech."""
    pytest.importorskip("faster_whisper", reason="needs facecue[speech]")
    from pipeline_support import model_args

    from facecue.cli import main
    from facecue.speech.audio import load_audio
    from facecue.speech.segment import SpeechSegmenter
    from facecue.speech.wer import word_errors

    clip = shared / "media/videos/grid_bbaf2n.mpg"
    out = tmp_path / "bbaf2n.json"
    assert main(["caption", str(clip), "--format", "json", "--out", str(out),
                 "--grammar", str(GRID_GRAMMAR), *model_args()]) == 0
    data = json.loads(out.read_text())
    (u,) = data["utterances"]
    assert _in_grammar(u["text"].split(), Grammar.read(GRID_GRAMMAR))
    assert word_errors("bin blue at f two now", u["text"])[0] <= 1
    times = [(w["start"], w["end"]) for w in u["words"]]
    assert all(a <= b for a, b in times) and all(
        times[i][1] <= times[i + 1][0] for i in range(len(times) - 1))
    spans = [s for step in SpeechSegmenter().spans([load_audio(clip)]) for s in step]
    lo, hi = spans[0][0], spans[-1][0] + len(spans[-1][1]) / 16000
    assert all(lo - 0.05 <= c["start"] < c["end"] <= hi + 0.05 for c in data["cues"])
    text = " ".join(re.sub(r"\[[^\]]+\]", "", c["text"]) for c in data["cues"])
    assert word_errors("bin blue at f two now", text)[0] <= 1


def test_grammar_forces_other_speech_and_skips_silence(shared, grid_transcriber):
    """Speech outside the grammar still comes out as grammar sentences (as in any grammar
    recogniser), one per stretch of speech; silence and noise give nothing (Whisper's own
    no-speech rule)."""
    grammar = grid_transcriber.grammar
    utterances = list(grid_transcriber.utterances(shared / "media/speech/jfk/jfk.flac"))
    assert len(utterances) >= 2
    assert all(_in_grammar(u.text.split(), grammar) for u in utterances)
    assert all(0 <= u.start < u.end <= 11.1 for u in utterances)
    rng = np.random.default_rng(0)
    for audio in (np.zeros(32000, np.float32),
                  (0.05 * rng.standard_normal(32000)).astype(np.float32)):
        assert grid_transcriber.recognise([(0.0, audio)]) == []
