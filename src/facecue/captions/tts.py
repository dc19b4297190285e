"""Expressive speech out: SSML with prosody per emotion, spoken to a WAV file by espeak-ng
(Debian package ``espeak-ng``), which understands SSML ``<prosody>`` with ``-m``.

Prosody per emotion (:data:`PROSODY`, changes in percent of espeak-ng's defaults) follows the
usual acoustic picture of each emotion: anger faster and louder, sadness slower, lower and
quieter, fear fast and high, happiness and surprise higher. Strong emotion
(``intensity >= sentences.STRONG``) exaggerates every change by half; neutral uses no prosody.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

from facecue.captions.sentences import EMOTIONS, STRONG, canonical
from facecue.fileio import new_file_beside

# emotion -> (rate, pitch, volume) changes in percent
PROSODY: dict[str, tuple[int, int, int]] = {
    "anger": (15, 5, 40),
    "contempt": (-10, -15, 0),
    "disgust": (-10, -10, 0),
    "fear": (20, 25, -10),
    "happiness": (10, 20, 20),
    "sad": (-20, -20, -30),
    "surprise": (5, 35, 20),
    "neutral": (0, 0, 0),
}


def ssml(text: str, emotion: str = "neutral", intensity: float = 0.5) -> str:
    """``text`` as SSML with the emotion's prosody."""
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; choose one of {list(EMOTIONS)}")
    scale = 1.5 if intensity >= STRONG else 1.0
    rate, pitch, volume = (round(v * scale) for v in PROSODY[canonical(emotion)])
    body = escape(text)
    if (rate, pitch, volume) != (0, 0, 0):
        body = (f'<prosody rate="{100 + rate}%" pitch="{pitch:+d}%" volume="{volume:+d}%">'
                f"{body}</prosody>")
    return f"<speak>{body}</speak>"


def say(text: str, out: str | Path, emotion: str = "neutral", intensity: float = 0.5,
        voice: str = "en-us") -> Path:
    """Speak ``text`` with the emotion's prosody into the WAV file ``out`` (atomically)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("speech synthesis needs espeak-ng: apt-get install -y espeak-ng")
    if not text.strip():
        raise ValueError("nothing to say: the text is empty")
    out = Path(out)
    fd, tmp = new_file_beside(out)  # the user's umask, not mkstemp's private 0600
    os.close(fd)
    try:
        subprocess.run([exe, "-m", "-v", voice, "-w", tmp, "--stdin"],
                       input=ssml(text, emotion, intensity), text=True, check=True,
                       capture_output=True, timeout=120)
        if os.path.getsize(tmp) <= 44:  # a bare WAV header: espeak-ng said nothing
            raise RuntimeError(f"espeak-ng produced no audio for {text!r}")
        os.replace(tmp, out)
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"espeak-ng failed: {e.stderr.strip() or e}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
