"""Where a sweep keeps what must outlive a node: Tune's state and every trial's checkpoints and failure record.

A storage root is a local folder or any URI pyarrow's file systems resolve (``s3://bucket/prefix``,
``gs://bucket/prefix``, ``hdfs://...``), set with ``--storage URI`` or ``tune.storage``. The sweep's folder there is
``<root>/<name of --out>/`` with ``ray/`` (Tune's experiment state, Ray's storage API) and ``train/<name>-trial=<id>/``
(the trial's checkpoints and ``failure.txt``). The default root is the experiment folder's parent, so by default the
sweep's folder *is* the experiment folder (``<out>/ray``, ``<out>/train``, as before storage existed).

S3 (and S3-compatible servers such as MinIO or moto) take their endpoint and credentials from the standard AWS
variables, read by pyarrow's ``S3FileSystem`` (the AWS SDK): ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION`` / ``AWS_REGION``, or ``~/.aws`` and
instance roles. The endpoint the driver resolved travels with the pickled file system to the workers; credentials
never do: every node reads its own (environment of ``ray start``, ``~/.aws``, instance role). Ray's docs:
https://docs.ray.io/en/latest/train/user-guides/persistent-storage.html
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from elm.checkpoint import STATE_FILE
from elm.config import ConfigError

MISTYPED_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:(?!//)")  # 'scheme:' not followed by '//' (C: stays a path)
SWEEP_FILES = (  # mirrored for --resume
    "config.yaml",
    "launcher.txt",
    "sweep_id.txt",
    "variant_sources.yaml",
    "code_digests.json",
)


@dataclass(frozen=True, eq=False)
class StoragePath:
    """A file or folder on a pyarrow file system, with the few ``pathlib.Path`` methods the platform uses
    (``/``, ``parent``, ``name``, ``is_file``, ``is_dir``, ``exists``, ``read_text``, ``write_text``, ``mkdir``).

    ``path`` is the path inside ``fs`` (absolute for a local folder, ``bucket/key`` for S3); ``scheme`` is '' for a
    local folder. Picklable (it travels to Ray workers).
    """

    fs: pafs.FileSystem
    path: str
    scheme: str = ""

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.path}" if self.scheme else self.path

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"StoragePath({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoragePath) and self.uri == other.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __truediv__(self, name: str) -> StoragePath:
        return StoragePath(self.fs, posixpath.join(self.path, name), self.scheme)

    @property
    def parent(self) -> StoragePath:
        return StoragePath(self.fs, posixpath.dirname(self.path.rstrip("/")), self.scheme)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def local(self) -> Path | None:
        """This path as a ``Path`` when the file system is this machine's (a local or mounted folder), else None."""
        return Path(self.path) if self.is_local else None

    def _type(self) -> pafs.FileType:
        return self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        return self._type() != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._type() == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._type() == pafs.FileType.Directory

    def mkdir(self, parents: bool = True, exist_ok: bool = True) -> None:
        """Create the folder (object stores have no folders: a no-op there that Ray's own code also relies on)."""
        self.fs.create_dir(self.path, recursive=parents)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as f:
            return f.readall()

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, data: bytes) -> None:
        self.parent.mkdir()
        with self.fs.open_output_stream(self.path) as f:
            f.write(data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def subdirs(self) -> list[str]:
        """Names of the folders directly inside this one (none if it does not exist)."""
        if not self.exists():
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        return sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.Directory)

    def delete(self) -> None:
        if self.is_dir():
            self.fs.delete_dir(self.path)
        elif self.is_file():
            self.fs.delete_file(self.path)

    def download(self, local: Path) -> None:
        """Copy this folder's contents into the local folder ``local``."""
        local.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(self.path, str(local), source_filesystem=self.fs, destination_filesystem=pafs.LocalFileSystem())

    def ray_storage(self) -> dict[str, Any]:
        """``storage_path`` (and ``storage_filesystem`` off this machine) for Tune's and Ray Train's ``RunConfig``
        and ``Tuner.restore``: a plain local path stays a plain path, as Ray resolves it itself."""
        if self.is_local:
            return {"storage_path": self.path}
        return {"storage_path": self.path, "storage_filesystem": self.fs}


def resolve_storage(uri: str) -> StoragePath:
    """The storage root ``uri`` names: a local folder (relative ones against the launch directory) or a URI.

    Reaches a remote store once (pyarrow resolves an S3 bucket's region), so a store that is down, a missing
    bucket or missing credentials fail here, before Ray starts.

    Raises:
        ConfigError: naming the URI and what pyarrow said.
    """
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if not scheme and MISTYPED_SCHEME.match(uri):  # s3:/bucket, gs:bucket: would become a local folder 's3:'
        raise ConfigError(
            f"--storage {uri}: looks like a URI with a mistyped scheme (write SCHEME://, e.g. "
            "s3://bucket/prefix); a local folder is a path such as /shared/sweeps or ./sweeps"
        )
    if scheme in ("", "file"):
        local = Path(uri.removeprefix("file://")).expanduser().resolve()
        return StoragePath(pafs.LocalFileSystem(), str(local))
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        bucket = path.split("/", 1)[0]
        found = fs.get_file_info(bucket).type != pafs.FileType.NotFound
    except (OSError, ValueError) as e:  # pyarrow's ArrowIOError / ArrowInvalid
        first = " ".join(str(e).split())[:300]
        raise ConfigError(
            f"--storage {uri}: cannot reach it ({first}); for S3 set AWS_ENDPOINT_URL (S3-compatible "
            "servers), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a local/shared folder"
        ) from None
    if not found:
        raise ConfigError(f"--storage {uri}: '{bucket}' does not exist there; create the bucket first")
    return StoragePath(fs, path.rstrip("/"), scheme)


def sweep_storage(root: str | None, out: Path) -> StoragePath:
    """The sweep's folder: ``<root>/<out.name>``; with no ``root``, ``out`` itself (the folder holds ``ray/`` and
    ``train/`` as before storage was an option).

    Raises:
        ConfigError: ``root`` cannot be reached (``resolve_storage``).
    """
    if root is None:
        return StoragePath(pafs.LocalFileSystem(), str(out))
    return resolve_storage(root) / out.name


def is_default_storage(folder: StoragePath, out: Path) -> bool:
    """Whether the sweep's storage folder is the experiment folder itself (nothing to mirror)."""
    return folder.is_local and Path(folder.path) == out


# A trial's checkpoints in its storage folder: <run>/checkpoints/epoch_NNNN/state.pt (elm.checkpoint's layout).
CHECKPOINTS = "checkpoints"


def complete_checkpoints(run: StoragePath) -> list[str]:
    """Names of the complete ``epoch_*`` checkpoints (those with their state file) in a trial's storage folder."""
    root = run / CHECKPOINTS
    return [name for name in root.subdirs() if name.startswith("epoch_") and (root / name / STATE_FILE).is_file()]


def pull_latest_checkpoint(run: StoragePath, local_run: Path) -> Path | None:
    """Copy the newest complete checkpoint of ``run`` (a trial's storage folder) into ``local_run/checkpoints/``;
    return the local checkpoint folder, or None when ``run`` holds none."""
    names = complete_checkpoints(run)
    if not names:
        return None
    target = local_run / CHECKPOINTS / names[-1]
    (run / CHECKPOINTS / names[-1]).download(target)
    return target


def push_checkpoint(checkpoint: Path, run: StoragePath, keep: int) -> None:
    """Upload a local checkpoint folder into ``run/checkpoints/<its name>``, then keep only the newest ``keep``
    there. The state file goes last, so a checkpoint without it (an upload cut short) is never resumed from."""
    target = run / CHECKPOINTS / checkpoint.name
    target.mkdir()
    for f in sorted(checkpoint.iterdir(), key=lambda p: p.name == STATE_FILE):
        if f.is_file():  # streamed, not read into memory
            pafs.copy_files(
                str(f), (target / f.name).path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=run.fs
            )
    for old in complete_checkpoints(run)[:-keep]:
        (run / CHECKPOINTS / old).delete()
