"""Small file helpers with no heavy dependencies: atomic writes, output checks, checksums."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path

# new_file_beside's names: .NAME.PID-RANDOM + suffix
_TEMP_NAME = re.compile(r"\.(.+)\.(\d+)-[0-9a-f]{8}(\.\w+)?")


def new_file_beside(path: str | Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new empty file in ``path``'s folder to write ``path`` under before renaming it into
    place: its open descriptor and its name (hidden: ``.NAME.PID-RANDOM`` + ``suffix``; the
    writer's process ID tells a later run whether the file is a dead writer's leftover).

    Unlike ``tempfile.mkstemp``, which makes every file private (0600), the file gets the
    mode the user's umask gives new files, and the finished file keeps it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def write_error(path: str | Path, error: OSError) -> OSError:
    """``error``, met writing ``path`` (or its temporary file), as one that names ``path``."""
    if error.errno is None:
        return OSError(f"cannot write {path}: {error}")
    return type(error)(error.errno, f"cannot write {path}: {error.strerror}")


def prepare_output(path: str | Path) -> None:
    """Fail now, before any work, if ``path`` cannot be written: it is a folder, or its
    folder cannot be made or takes no new files. Also removes what dead writers left there
    (:func:`remove_stale`)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {path.parent} is a file")
    try:
        fd, tmp = new_file_beside(path)
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    tmp.unlink()
    remove_stale(path.parent)


def remove_stale(folder: str | Path) -> None:
    """Delete the temporary files in ``folder`` whose writer died before finishing them
    (killed with SIGKILL, a power cut), so they do not pile up; running writers' are kept."""
    if os.name != "posix":  # there os.kill(pid, 0) would end the process
        return
    for tmp in Path(folder).glob(".*"):
        name = _TEMP_NAME.fullmatch(tmp.name)
        if name and not _running(int(name[2])):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part;
    an error names ``path``."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = new_file_beside(path)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
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
