import json
import re
import subprocess
import sys

import pytest

from facecue.captions.cues import (
    COLOURS,
    MAX_CHARS,
    MAX_SECONDS,
    MIN_SECONDS,
    caption_format,
    make_cues,
    render_captions,
    stylesheet,
    to_srt,
    to_vtt,
    write_captions,
)
from facecue.captions.fusion import EmotionalUtterance
from facecue.captions.sentences import canonical
from facecue.labels import LABEL_SETS, class_names
from facecue.speech.words import Utterance, Word

VTT_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d{3})"
SRT_TIME = VTT_TIME.replace(r"\.", ",")


def utterance(text: str, start: float, step: float = 0.3) -> Utterance:
    words = tuple(Word(w, round(start + i * step, 3), round(start + (i + 1) * step - 0.02, 3), 0.9)
                  for i, w in enumerate(text.split()))
    return Utterance(text, words[0].start, words[-1].end, words)


def item(text, start, emotion="happiness", intensity=0.5, **kw) -> EmotionalUtterance:
    return EmotionalUtterance(utterance(text, start), emotion, intensity, **kw)


LONG = ("it is of the first importance that the letter used should be fine in form, and it was "
        "a matter of course that in the middle ages the craftsmen took care of it.")
ITEMS = [item("And so my fellow Americans,", 0.12, "happiness", 0.9),
         item(LONG, 3.0, "anger", 0.5),
         item("fish & <chips>", 30.0, "unknown", 0.2, no_face=True)]


def seconds(m) -> float:
    h, mi, s, ms = map(int, m)
    return h * 3600 + mi * 60 + s + ms / 1000


def parse_vtt(text: str) -> list[tuple[float, float, list[str]]]:
    assert text.startswith("WEBVTT\n\n")
    blocks = text.strip().split("\n\n")[1:]
    assert blocks[0].startswith("STYLE\n") and "-->" not in blocks[0]
    cues = []
    for n, block in enumerate(blocks[1:], 1):
        ident, timing, *lines = block.split("\n")
        assert ident == str(n)
        m = re.fullmatch(rf"{VTT_TIME} --> {VTT_TIME}", timing)
        assert m, timing
        cues.append((seconds(m.groups()[:4]), seconds(m.groups()[4:]), lines))
    return cues


def check_readable(cues) -> None:
    for (start, end, lines), nxt in zip(cues, [*cues[1:], None], strict=True):
        assert 0 <= start < end
        assert end - start <= MAX_SECONDS + MIN_SECONDS
        assert 1 <= len(lines) <= 2
        if nxt:
            assert end <= nxt[0] + 1e-6  # no overlap
        for line in lines:
            assert len(re.sub(r"</?c[^>]*>", "", line)) <= MAX_CHARS


def test_vtt_is_valid_and_readable():
    text = to_vtt(make_cues(ITEMS))
    cues = parse_vtt(text)
    check_readable(cues)
    assert len(cues) >= 4  # the long utterance is split
    first = cues[0][2][0]
    assert first == "<c.happiness.strong>[joyfully] And so my fellow Americans!!</c>"
    classes = {c for _, _, lines in cues for line in lines
               for c in re.findall(r"<c\.([a-z.]+)>", line)}
    assert classes == {"happiness.strong", "anger", "unknown"}  # no face: never neutral
    assert "fish &amp; &lt;chips&gt;" in text  # escaped, never taken as a tag
    long_cues = [c for c in cues if "anger" in c[2][0]]
    assert long_cues[0][2][0].startswith("<c.anger>[angrily] it is")
    assert long_cues[-1][2][-1].endswith("it!</c>")


def test_cues_follow_word_times():
    cues = make_cues(ITEMS)
    words = [w for x in ITEMS for w in x.utterance.words]
    starts = {w.start for w in words}
    assert all(c.start in starts for c in cues)
    assert cues[-1].start == 30.0 and cues[-1].end == pytest.approx(30.0 + MIN_SECONDS)


def test_pause_starts_a_new_cue():
    words = (Word("ask", 3.3, 3.7, 0.9), Word("not", 3.7, 4.2, 0.9), Word("what", 5.5, 5.8, 0.9))
    x = EmotionalUtterance(Utterance("ask not what", 3.3, 5.8, words), "neutral", 0.0)
    assert [c.text for c in make_cues([x])] == ["ask not", "what"]


def test_stylesheet_has_a_colour_per_emotion_and_a_weight_for_strong():
    css = stylesheet()
    for name, colour in COLOURS.items():
        assert f"::cue(.{name}) {{ color: {colour}; }}" in css
    assert "::cue(.strong) { font-weight: bold; }" in css
    assert "::cue(.unknown) { color: #cfd8dc; font-style: italic; }" in css  # not neutral's
    # one class per emotion of every label set, under the captions' names (sadness is sad)
    assert set(COLOURS) == {canonical(e) for labels in LABEL_SETS for e in class_names(labels)}


def test_colours_are_readable_on_the_players_black_caption_background():
    def luminance(colour: str) -> float:
        rgb = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    for name, colour in COLOURS.items():  # WCAG AAA contrast for normal text is 7:1
        assert (luminance(colour) + 0.05) / 0.05 >= 7, name


def test_srt_is_valid():
    text = to_srt(make_cues(ITEMS))
    blocks = text.strip().split("\n\n")
    for n, block in enumerate(blocks, 1):
        ident, timing, *lines = block.split("\n")
        assert ident == str(n)
        assert re.fullmatch(rf"{SRT_TIME} --> {SRT_TIME}", timing)
        assert 1 <= len(lines) <= 2 and "<c." not in block
    assert text.endswith("\n")
    assert blocks[-1].split("\n")[2] == "<i>fish & <chips></i>"  # no face: off screen, SDH
    assert not any(line.startswith("<i>") for b in blocks[:-1] for line in b.split("\n"))


def test_write_captions_all_formats(tmp_path):
    vtt, css = write_captions(tmp_path / "a.vtt", ITEMS)
    assert css.read_text() == stylesheet() and parse_vtt(vtt.read_text())
    (srt,) = write_captions(tmp_path / "a.srt", ITEMS)
    assert srt.read_text().startswith("1\n")
    (js,) = write_captions(tmp_path / "a.json", ITEMS, emoji=True)
    data = json.loads(js.read_text())
    u = data["utterances"][0]
    assert u["emotion"] == "happiness" and u["sentence"] == "And so my fellow Americans!!"
    assert u["words"][0] == {"word": "And", "start": 0.12, "end": 0.40, "probability": 0.9}
    assert data["utterances"][2]["no_face"] is True
    assert data["utterances"][2]["emotion"] == data["cues"][-1]["emotion"] == "unknown"
    assert data["cues"][-1]["no_face"] is True and data["utterances"][2]["voice"] is None
    assert data["cues"][0]["text"].endswith("\U0001F604")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.css", "a.json", "a.srt", "a.vtt"]
    with pytest.raises(ValueError, match="unknown caption format"):
        write_captions(tmp_path / "a.txt", ITEMS)


def test_rendered_captions_are_what_is_written(tmp_path):
    """Text for stdout and the files come from the same rendering, format from the suffix."""
    for name in ("a.vtt", "a.SRT", "a.json", "plain"):
        fmt = caption_format(tmp_path / name)
        (path, *_) = write_captions(tmp_path / name, ITEMS, emoji=True)
        assert path.read_text() == render_captions(ITEMS, fmt, emoji=True)
    assert [caption_format(None), caption_format("a.srt", "json")] == ["vtt", "json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["a.SRT", "a.css", "a.json", "a.vtt", "plain", "plain.css"]  # vtt: the default


def test_no_utterances_give_an_empty_but_valid_file(tmp_path):
    (vtt, _) = write_captions(tmp_path / "empty.vtt", [])
    assert parse_vtt(vtt.read_text()) == []


def test_captions_and_sentences_need_no_speech_extra():
    code = ("import sys\n"
            "for m in ('faster_whisper', 'av', 'ctranslate2', 'vaderSentiment', 'sounddevice',\n"
            "          'parselmouth'):\n"
            "    sys.modules[m] = None  # importing any of them now fails\n"
            "import facecue.captions.cues, facecue.captions.sentences, facecue.captions.tts\n"
            "import facecue.captions.fusion, facecue.speech.voice\n"
            "import facecue.cli\n"
            "from facecue.speech.transcribe import Transcriber\n"
            "from facecue.speech.weights import WeightsMissingError\n"
            "try:\n"
            "    Transcriber()\n"
            "except WeightsMissingError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'facecue[speech]'" in out.stdout
