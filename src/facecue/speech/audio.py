"""Audio in: which streams a media file holds (:func:`probe`, one look at the container); its
soundtrack decoded with PyAV (it bundles FFmpeg, so no system ffmpeg is needed), streamed in
fixed-size chunks so that hour-long files use constant memory; and the microphone for live use.

Everything is 16 kHz mono float32 in [-1, 1], the rate Whisper and Silero VAD expect.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """The input has no usable audio: no audio track, or it cannot be decoded."""


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("audio decoding needs PyAV: pip install 'facecue[speech]'") from e
    return av


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, from one look at its container."""

    has_audio: bool  # at least one audio stream (it may still be silent)
    has_video: bool  # a video stream with real frames (not just cover art)


def probe(path: str | Path) -> MediaInfo:
    """Open ``path`` once and say which streams it has; :class:`AudioError` if it cannot be
    opened as media."""
    av = _av()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return MediaInfo(
                has_audio=bool(container.streams.audio),
                has_video=any(not s.disposition & av.stream.Disposition.attached_pic
                              for s in container.streams.video))
    except av.error.FFmpegError as e:
        raise AudioError(f"cannot open {path}: {e}") from e


def has_audio(path: str | Path) -> bool:
    """True if the file has at least one audio stream (it may still be silent)."""
    return probe(path).has_audio


def has_video(path: str | Path) -> bool:
    """True if the file has a video stream with real frames (not just cover art)."""
    return probe(path).has_video


def iter_audio(path: str | Path, chunk_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Yield the first audio track of ``path`` as 16 kHz mono float32 chunks of
    ``chunk_seconds`` (the last one shorter).

    Works for audio files (wav, flac, mp3, ogg, ...) and the soundtrack of videos. Raises
    :class:`AudioError` for a missing file's audio track or an undecodable file; damaged
    packets in an otherwise readable file are skipped, as FFmpeg players do.
    """
    av = _av()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    chunk = int(chunk_seconds * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    size = 0
    decoded_any = False
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError(f"{path} has no audio track")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in _frames(container, av):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                    pending.append(samples)
                    size += len(samples)
                    decoded_any = True
                    while size >= chunk:
                        buf = np.concatenate(pending)
                        yield buf[:chunk]
                        pending, size = [buf[chunk:]], len(buf) - chunk
    except av.error.FFmpegError as e:
        raise AudioError(f"cannot decode audio of {path}: {e}") from e
    if not decoded_any:
        raise AudioError(f"no decodable audio in {path}")
    if size:
        yield np.concatenate(pending)


def _frames(container, av) -> Iterator:
    """Decoded audio frames of the first audio stream, then ``None`` to flush the resampler;
    packets FFmpeg reports as invalid are skipped."""
    stream = container.streams.audio[0]
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            continue
        for frame in frames:
            frame.pts = None  # resampling needs no timestamps; broken ones would raise
            yield frame
    yield None


def load_audio(path: str | Path) -> np.ndarray:
    """The whole first audio track as one 16 kHz mono float32 array (for short files)."""
    chunks = list(iter_audio(path))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def microphone_chunks(chunk_seconds: float = 0.25, device: int | str | None = None
                      ) -> Iterator[np.ndarray]:
    """Yield live 16 kHz mono chunks from a microphone (needs ``facecue[mic]``)."""
    try:
        import sounddevice as sd
    except ImportError as e:
        raise RuntimeError("microphone input needs sounddevice: pip install 'facecue[mic]'") from e
    except OSError as e:  # the PortAudio library itself is missing
        raise RuntimeError(f"microphone input unavailable: {e} "
                           "(Debian/Ubuntu: apt-get install libportaudio2)") from e
    try:
        sd.check_input_settings(device=device, channels=1, samplerate=SAMPLE_RATE)
    except Exception as e:  # sounddevice raises PortAudioError/ValueError for absent devices
        raise RuntimeError(f"no usable microphone ({e}); connect one or choose another "
                           "input device") from e
    block = int(chunk_seconds * SAMPLE_RATE)
    with sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", device=device,
                        blocksize=block) as stream:
        while True:
            data, _ = stream.read(block)
            yield data[:, 0].copy()
