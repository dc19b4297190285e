"""Speech fused with the speaker's face: emotion-marked sentences, captions, live captions
and expressive speech.

``fusion`` gives each utterance its speaker's emotion; ``sentences`` marks the text;
``cues`` renders and writes captions (WebVTT, SRT, JSON); ``media`` captions a media file
(:func:`~.media.caption_file`); ``live`` captions as the speech comes; ``tts`` speaks with an
emotion's prosody.

Recognition and fusion need the speech extra; the caption formats are pure Python."""
