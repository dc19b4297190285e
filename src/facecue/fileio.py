"""Small file helpers with no heavy dependencies: atomic writes and checksums."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path


def new_file_beside(path: str | Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new empty file in ``path``'s folder to write ``path`` under before renaming it into
    place: its open descriptor and its name (hidden: ``.NAME.RANDOM`` + ``suffix``).

    Unlike ``tempfile.mkstemp``, which makes every file private (0600), the file gets the
    mode the user's umask gives new files, and the finished file keeps it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part."""
    path = Path(path)
    fd, tmp = new_file_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
