"""Fetch an official dataset tarball with a short network timeout, verify its md5, and extract it.

Machines without internet must fail fast with a message saying where to put the files, never hang.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.request
from pathlib import Path

DEFAULT_TIMEOUT_S = 15.0
_CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """The tarball could not be fetched, or it arrived with the wrong md5."""


def fetch(url: str, dest: Path, md5: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Download ``url`` to ``dest`` and check its md5.

    Args:
        url: http(s) address of the file.
        dest: where to write it; a partial download is removed.
        md5: expected hex digest of the whole file.
        timeout_s: socket timeout for connecting and for each read.
    Raises:
        DownloadError: on any network failure or an md5 mismatch.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out:
            while chunk := response.read(_CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
    except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError and timeouts are OSErrors
        partial.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: {exc!r}") from exc
    if digest.hexdigest() != md5:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"downloaded {url} has md5 {digest.hexdigest()}, expected {md5}: corrupt or wrong file")
    os.replace(partial, dest)


def fetch_and_extract(url: str, md5: str, root: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Download the tarball at ``url`` into ``root``, verify ``md5``, extract it there, and delete the tarball.

    Raises:
        DownloadError: on network failure, md5 mismatch, or an unreadable archive.
    """
    tarball = root / url.rsplit("/", 1)[-1]
    fetch(url, tarball, md5, timeout_s=timeout_s)
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            archive.extractall(root, filter="data")  # "data" rejects absolute paths and links out of root
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"could not extract {tarball}: {exc!r}") from exc
    finally:
        tarball.unlink(missing_ok=True)


__all__ = ["DEFAULT_TIMEOUT_S", "DownloadError", "fetch", "fetch_and_extract"]
