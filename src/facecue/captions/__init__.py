"""Speech fused with the speaker's face: emotion-marked sentences, captions, live captions
and expressive speech.

Recognition and fusion need the speech extra; the caption formats are pure Python."""
