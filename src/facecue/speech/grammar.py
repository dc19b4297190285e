"""Grammar-constrained recognition: each stretch of speech is read as one sentence of a small
command grammar (one alternative from each slot in turn), as pocketsphinx and vosk grammars do.

Whisper writes made-up command languages as English ("bin blue at f two now" becomes "Bimble F
tuner"). Given the grammar, a beam search runs over the token sequences the grammar allows,
scored by Whisper's own decoder on the stretch's audio, and keeps the sentence Whisper finds
most likely. Speech outside the grammar is forced onto its nearest sentence, as in any grammar
recogniser; the words' probabilities show how well it fits.

Grammar file: one slot per line, alternatives separated by ``|`` (an alternative may be several
words); blank lines and lines starting with ``#`` are skipped::

    bin | lay | place | set
    blue | green | red | white
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # faster-whisper is the speech extra; only the search below needs it
    from faster_whisper import WhisperModel

NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
           "eighteen", "nineteen", "twenty")
# Whisper's own rule for a stretch that was not speech (faster-whisper's defaults)
NO_SPEECH_PROB, LOW_LOGPROB = 0.6, -1.0


class GrammarError(ValueError):
    """A grammar file that cannot be used; the message names the line."""


@dataclass(frozen=True)
class Grammar:
    """Sentences made of one alternative from each slot, in order."""

    slots: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, text: str, source: str = "grammar") -> Grammar:
        slots = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            alternatives = tuple(" ".join(a.split()) for a in line.split("|"))
            if not all(alternatives):
                raise GrammarError(f"{source}, line {number}: empty alternative in {line!r}")
            slots.append(alternatives)
        if not slots:
            raise GrammarError(f"{source}: no slots (one line of `a | b | c` per slot)")
        return cls(tuple(slots))

    @classmethod
    def read(cls, path: str | Path) -> Grammar:
        return cls.parse(Path(path).read_text(encoding="utf-8"), str(path))

    @property
    def words(self) -> str:
        """Every word the grammar uses, e.g. as a recogniser's hot-word vocabulary."""
        return " ".join(dict.fromkeys(w for slot in self.slots for a in slot for w in a.split()))


def spellings(phrase: str) -> set[str]:
    """How Whisper may write ``phrase``: as given, capitalised, upper case, and a number word
    as digits ("three" -> "3")."""
    out = {phrase, phrase.capitalize(), phrase.upper()}
    if phrase.lower() in NUMBERS:
        out.add(str(NUMBERS.index(phrase.lower())))
    return out


@dataclass(frozen=True)
class GrammarReading:
    """The sentence read from a stretch: words (as the grammar spells them) with times in
    seconds from the stretch's start, and Whisper's scores."""

    words: tuple[tuple[str, float, float, float], ...]  # text, start, end, probability
    mean_logprob: float
    no_speech_prob: float

    @property
    def is_speech(self) -> bool:
        """False when Whisper's own no-speech rule rejects the stretch."""
        return not (self.no_speech_prob > NO_SPEECH_PROB and self.mean_logprob < LOW_LOGPROB)


class GrammarDecoder:
    """Reads stretches of audio as sentences of ``grammar`` with a loaded ``WhisperModel``."""

    def __init__(self, model: WhisperModel, grammar: Grammar, language: str = "en",
                 beam_size: int = 5) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.model, self.grammar, self.beam_size = model, grammar, beam_size
        self.tokenizer = tok = Tokenizer(model.hf_tokenizer, True, task="transcribe",
                                         language=language)
        self.start = [*tok.sot_sequence, tok.no_timestamps]
        # per slot: every spelling's tokens (word by word, so each word starts a token run)
        # -> (the alternative, its words' token counts)
        self.slots = []
        for slot in grammar.slots:
            table: dict[tuple[int, ...], tuple[str, tuple[int, ...]]] = {}
            for alternative in slot:
                for spelled in spellings(alternative):
                    parts = [tok.encode(" " + w) for w in spelled.split()]
                    table[tuple(t for p in parts for t in p)] = (alternative,
                                                                tuple(len(p) for p in parts))
            self.slots.append(table)

    def read(self, audio: np.ndarray) -> GrammarReading:
        """The grammar sentence Whisper finds most likely for 16 kHz mono ``audio``."""
        from faster_whisper.audio import pad_or_trim

        features = self.model.feature_extractor(audio)
        frames = features.shape[-1]
        encoded = self.model.encode(pad_or_trim(features))
        tokens, chosen, counts, score, no_speech = self._search(encoded)
        (result,) = self.model.model.align(encoded, self.tokenizer.sot_sequence, [list(tokens)],
                                           frames)
        words = self._timed_words(result, chosen, counts)
        return GrammarReading(words, score / max(1, len(tokens)), no_speech)

    def _search(self, encoded):
        """Beam search over the grammar's token sequences. A hypothesis is (log-prob, tokens,
        slot, tokens of the current slot so far, chosen alternatives, word token counts)."""
        beams = [(0.0, (), 0, (), (), ())]
        finished = []
        no_speech = 0.0
        while beams:
            logprobs, no_speech_probs = self._next_logprobs(encoded, [b[1] for b in beams])
            if not beams[0][1]:  # the first step: no tokens yet
                no_speech = no_speech_probs[0]
            grown = []
            for (score, tokens, slot, part, chosen, counts), lp in zip(beams, logprobs,
                                                                      strict=True):
                for seq, (alternative, word_counts) in self.slots[slot].items():
                    if len(seq) <= len(part) or seq[:len(part)] != part:
                        continue
                    t = seq[len(part)]
                    step = (score + float(lp[t]), tokens + (t,))
                    if len(seq) == len(part) + 1:
                        grown.append((*step, slot + 1, (), chosen + (alternative,),
                                      counts + word_counts))
                    else:
                        grown.append((*step, slot, part + (t,), chosen, counts))
            done = [g for g in grown if g[2] == len(self.slots)]
            finished += done
            beams = sorted((g for g in grown if g[2] < len(self.slots)),
                           key=lambda g: -g[0])[:self.beam_size]
            best = max((f[0] for f in finished), default=-np.inf)
            beams = [b for b in beams if b[0] > best]  # log-probs only fall from here
        score, tokens, _, _, chosen, counts = max(finished, key=lambda f: f[0])
        return tokens, chosen, counts, score, no_speech

    def _next_logprobs(self, encoded, prefixes) -> tuple[list[np.ndarray], list[float]]:
        """Whisper's next-token log-probabilities after each token prefix, and the no-speech
        probability. CTranslate2 returns the logits of every decoding step, forced prompt
        tokens included; end-of-text is suppressed so decoding runs past the prefix."""
        import ctranslate2

        out: list[np.ndarray] = [np.empty(0)] * len(prefixes)
        no_speech: list[float] = [0.0] * len(prefixes)
        enc = np.asarray(encoded)
        for n in sorted({len(p) for p in prefixes}):  # one batch per prefix length
            rows = [i for i, p in enumerate(prefixes) if len(p) == n]
            batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(
                np.repeat(enc, len(rows), 0)))
            results = self.model.model.generate(
                batch, [self.start + list(prefixes[i]) for i in rows], beam_size=1,
                max_length=len(self.start) + 2 * n + 2, return_logits_vocab=True,
                return_no_speech_prob=True, suppress_tokens=[self.tokenizer.eot],
                suppress_blank=False)
            for i, r in zip(rows, results, strict=True):
                if len(r.logits[0]) <= n:
                    raise RuntimeError(f"CTranslate2 returned {len(r.logits[0])} decoding steps "
                                       f"for a {n}-token prefix; expected more")
                logits = np.asarray(r.logits[0][n], np.float64).reshape(-1)
                out[i] = logits - np.logaddexp.reduce(logits)
                no_speech[i] = float(r.no_speech_prob)
        return out, no_speech

    def _timed_words(self, result, chosen, counts) -> tuple[tuple[str, float, float, float],
                                                             ...]:
        """Word times from the decoder's cross-attention alignment (faster-whisper's method:
        a word starts where the alignment path first reaches its first token)."""
        text_indices = np.array([a[0] for a in result.alignments])
        time_indices = np.array([a[1] for a in result.alignments])
        jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
        jump_times = time_indices[jumps] / self.model.tokens_per_second
        bounds = np.concatenate([[0], np.cumsum(counts)])
        probs = np.asarray(result.text_token_probs, np.float64)
        texts = [w for alternative in chosen for w in alternative.split()]
        return tuple((text, round(float(jump_times[a]), 3),
                      round(float(jump_times[min(b, len(jump_times) - 1)]), 3),
                      round(float(probs[a:b].mean()), 4))
                     for text, a, b in zip(texts, bounds[:-1], bounds[1:], strict=True))
