"""MD5 of dataset files, cached so that verifying them on every trial costs a stat() per file.

The cache has two levels: a per-process dict, and a small JSON file next to the data (written only if the
folder is writable; read-only shared copies fall back to hashing once per process). Entries are keyed on the
file's size and mtime, so a replaced file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Mapping

CACHE_FILE_NAME = ".elm_md5_cache.json"
_CHUNK_BYTES = 1 << 20

# abs path -> (size, mtime_ns, md5 hex)
_PROCESS_CACHE: dict[str, tuple[int, int, str]] = {}


def md5_of_file(path: Path, chunk_bytes: int = _CHUNK_BYTES) -> str:
    """Hex MD5 of a file's bytes (uncached)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _read_disk_cache(folder: Path) -> dict[str, list]:
    try:
        with open(folder / CACHE_FILE_NAME) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_disk_cache(folder: Path, entries: dict[str, list]) -> None:
    tmp = folder / f"{CACHE_FILE_NAME}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(entries, f, indent=0, sort_keys=True)
        os.replace(tmp, folder / CACHE_FILE_NAME)
    except OSError:  # read-only data folder: the per-process cache still applies
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def cached_md5s(folder: Path, names: list[str]) -> dict[str, str]:
    """MD5 of ``folder / name`` for each name, reusing cached digests whose size and mtime still match.

    Args:
        folder: directory holding the files.
        names: file names inside ``folder``; all must exist.
    Returns:
        name -> hex md5.
    """
    folder = Path(folder).resolve()
    disk = _read_disk_cache(folder)
    result: dict[str, str] = {}
    disk_changed = False
    for name in names:
        path = folder / name
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        cached = _PROCESS_CACHE.get(str(path))
        if cached is not None and cached[:2] == key:
            result[name] = cached[2]
            continue
        entry = disk.get(name)
        if isinstance(entry, list) and len(entry) == 3 and tuple(entry[:2]) == key:
            digest = str(entry[2])
        else:
            digest = md5_of_file(path)
            disk[name] = [key[0], key[1], digest]
            disk_changed = True
        _PROCESS_CACHE[str(path)] = (key[0], key[1], digest)
        result[name] = digest
    if disk_changed:
        _write_disk_cache(folder, disk)
    return result


def mismatched_files(folder: Path, expected: Mapping[str, str]) -> list[str]:
    """Names in ``expected`` (name -> official md5) whose file in ``folder`` has a different md5, in order."""
    actual = cached_md5s(folder, list(expected))
    return [name for name, md5 in expected.items() if actual[name] != md5]
