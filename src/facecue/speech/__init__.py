"""Offline speech recognition with word times (Whisper base through faster-whisper).

``audio`` probes media files and decodes their soundtrack (or the microphone); ``segment``
cuts speech out at pauses; ``transcribe`` recognises it (:class:`~.transcribe.Transcriber`)
into ``words`` (``Word``, ``Utterance``), with Whisper's encoder on a short ``window`` and
``checks`` for a pass gone wrong; ``weights`` installs the model; ``grammar`` reads speech as
a command grammar's sentences; ``voice`` measures how each utterance was said (loudness,
pitch, pace, arousal, manner tags); ``wer`` scores transcripts.

Needs the speech extra: ``pip install "facecue[speech]"``."""
