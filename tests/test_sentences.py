import pytest

from facecue.captions.sentences import EMOTIONS, STRONG, STYLES, mark_sentence, mark_words
from facecue.labels import LABEL_SETS, class_names

TEXT = "ask what you can do for your country."

# (emotion, intensity) -> expected sentence with manner tag and emoji, one line per rule
EXPECTED = {
    ("anger", 0.5): "[angrily] ask what you can do for your country! \U0001F620",
    ("anger", 0.9): "[furiously] ask what you can do for your country!! \U0001F620",
    ("contempt", 0.5): "[with contempt] ask what you can do for your country. \U0001F612",
    ("contempt", 0.9): "[scornfully] ask what you can do for your country! \U0001F612",
    ("disgust", 0.5): "[with disgust] ask what you can do for your country. \U0001F922",
    ("disgust", 0.9): "[with revulsion] ask what you can do for your country! \U0001F922",
    ("fear", 0.5): "[fearfully] ask what you can do for your country... \U0001F628",
    ("fear", 0.9): "[in terror] ask what you can do for your country...! \U0001F628",
    ("happiness", 0.5): "[happily] ask what you can do for your country! \U0001F604",
    ("happiness", 0.9): "[joyfully] ask what you can do for your country!! \U0001F604",
    ("sad", 0.5): "[sadly] ask what you can do for your country... \U0001F622",
    ("sad", 0.9): "[tearfully] ask what you can do for your country... \U0001F622",
    # ferplus8's name for it
    ("sadness", 0.5): "[sadly] ask what you can do for your country... \U0001F622",
    ("sadness", 0.9): "[tearfully] ask what you can do for your country... \U0001F622",
    ("surprise", 0.5): "[in surprise] ask what you can do for your country?! \U0001F632",
    ("surprise", 0.9): "[in astonishment] ask what you can do for your country?!! \U0001F632",
    ("neutral", 0.5): TEXT,
    ("neutral", 0.9): TEXT,
}


def test_every_label_of_every_label_set_is_covered():
    assert set().union(*(class_names(labels) for labels in LABEL_SETS)) == set(EMOTIONS)
    assert {e for e, _ in EXPECTED} == set(EMOTIONS)


@pytest.mark.parametrize(("emotion", "intensity"), sorted(EXPECTED))
def test_full_marking(emotion, intensity):
    got = mark_sentence(TEXT, emotion, intensity, manner=True, emoji=True)
    assert got == EXPECTED[emotion, intensity]


@pytest.mark.parametrize("emotion", sorted(STYLES))
def test_plain_marking_changes_only_the_final_punctuation(emotion):
    got = mark_sentence("And so, my fellow Americans,", emotion)
    assert got == "And so, my fellow Americans" + STYLES[emotion].mark
    assert mark_sentence("no punctuation", emotion) == "no punctuation" + STYLES[emotion].mark


@pytest.mark.parametrize(("emotion", "want"), [
    ("anger", "Is it you?!"), ("happiness", "Is it you?!"), ("surprise", "Is it you?!"),
    ("fear", "Is it you?"), ("sad", "Is it you?"), ("disgust", "Is it you?"),
    ("neutral", "Is it you?")])
def test_questions_keep_their_question_mark(emotion, want):
    assert mark_sentence("Is it you?", emotion) == want


def test_intensity_threshold_is_inclusive():
    assert mark_sentence("go", "anger", STRONG) == "go!!"
    assert mark_sentence("go", "anger", STRONG - 0.01) == "go!"


def test_neutral_and_empty_stay_plain():
    assert mark_sentence("Fine,  thanks.", "neutral", 1.0, manner=True, emoji=True) == \
        "Fine, thanks."
    assert mark_sentence("", "anger", 1.0, manner=True, emoji=True) == ""


def test_word_level_marks_keep_one_item_per_word():
    words = ["ask", "not", "what"]
    got = mark_words(words, "happiness", 0.8, manner=True)
    assert got == ["[joyfully] ask", "not", "what!!"]
    assert words == ["ask", "not", "what"]


def test_unknown_emotion_is_rejected():
    with pytest.raises(ValueError, match="unknown emotion 'joy'"):
        mark_sentence("hello", "joy")
