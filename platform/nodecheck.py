"""Before a sweep runs on a joined cluster: every alive node must reach the sweep's storage and hold its data.

A trial may run (or be restarted) on any node. It reads its dataset from ``data.root`` *on that node* and writes
its checkpoints to the sweep's storage folder (``platform.storage``). ``check_nodes`` sends one tiny task to each
alive node (node-affinity scheduling, no CPU) that

- reads a marker file the driver has just written to the storage folder: a node that cannot read it has a
  different disk there (a node-local path), or cannot reach the store (credentials, endpoint);
- lists the dataset's files that are missing on that node (``missing_data_files``).

and refuses the sweep naming each node and what it lacks. On a single-node cluster a local storage folder is not
checked (the driver shares the node's disk), except through a ``ray://`` client; the data always are.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from elm.config import ConfigError
from platform.storage import StoragePath

MARKER = ".elm-storage-check"
NODE_TASK_TIMEOUT_S = 300.0  # a node may first install the job's runtime environment (the shipped checkout)
MISSING_SHOWN = 5  # missing files named per node; the rest are counted

# Dataset name -> the files a node must hold for ``data.kwargs`` (absolute paths). A dataset without an entry
# (e.g. one generated in memory) needs no file; every ``root``/``split_dir`` it names must still be a folder.
DataFiles = Callable[[Mapping[str, Any]], list[Path]]


def cifar_files(variant: str) -> DataFiles:
    """The official CIFAR release's files under ``<root>/<its folder>/`` (``elm.data.cifar.LAYOUTS``)."""

    def files(kwargs: Mapping[str, Any]) -> list[Path]:
        from elm.data.cifar import LAYOUTS

        layout = LAYOUTS[variant]
        folder = Path(str(kwargs.get("root", "data"))) / layout.folder
        return [folder / f for f in layout.all_files]

    return files


def split_list_files(train: str, test: str) -> DataFiles:
    """Datasets of image files named in split lists: the lists in ``split_dir``, then every image they name."""

    def files(kwargs: Mapping[str, Any]) -> list[Path]:
        from elm.data.imagenet_lt import read_split_file

        root = Path(str(kwargs["root"]))
        split_dir = Path(str(kwargs.get("split_dir") or root))
        lists = [split_dir / train, split_dir / test]
        return lists + [root / p for f in lists if f.is_file() for p in read_split_file(f)[0]]

    return files


REQUIRED_FILES: dict[str, DataFiles] = {
    "cifar10_lt": cifar_files("cifar10"),
    "cifar100_lt": cifar_files("cifar100"),
    "imagenet_lt": split_list_files("ImageNet_LT_train.txt", "ImageNet_LT_test.txt"),
    "inaturalist2018": split_list_files("iNaturalist18_train.txt", "iNaturalist18_val.txt"),
}


def missing_data_files(name: str, kwargs: Mapping[str, Any]) -> list[str]:
    """The files (or folders) of dataset ``name`` with ``kwargs`` that this machine lacks, in order; its folders are
    the arguments its factory marks ``Folder()`` (``elm.registry``)."""
    import elm.data  # noqa: F401  (registers the datasets)
    from elm.registry import DATASETS, Folder

    keys = DATASETS.marked(name, Folder) if name in DATASETS.names() else {}
    folders = [Path(str(kwargs[k])) for k in keys if isinstance(kwargs.get(k), str)]
    missing = [f"{p}/" for p in folders if not p.is_dir()]
    if missing:
        return missing
    files = REQUIRED_FILES.get(DATASETS.canonical(name, kwargs))
    return [str(p) for p in files(kwargs) if not p.is_file()] if files is not None else []


@dataclass(frozen=True)
class NodeReport:
    """What one node's probe found."""

    node: str  # "<ip> (<hostname>, id <node id prefix>)": nodes on one machine share an IP
    storage_error: str | None  # why the node cannot read the driver's marker, or None
    missing: tuple[str, ...]  # dataset files absent on the node


def probe_node(marker: StoragePath | None, token: str, data_name: str, data_kwargs: Mapping[str, Any]) -> NodeReport:
    """Run on one node: can it read ``marker`` (holding ``token``), and which data files does it lack?"""
    import ray

    node_id = ray.get_runtime_context().get_node_id()[:8]
    node = f"{ray.util.get_node_ip_address()} ({socket.gethostname()}, id {node_id})"
    error = None
    if marker is not None:
        try:
            if marker.read_text().strip() != token:
                error = "it sees another file there (its own disk, not the driver's)"
        except FileNotFoundError:
            error = "the driver's marker file is not there (a node-local path: its own disk, not the driver's)"
        except OSError as e:
            error = " ".join(str(e).split())[:200]
    return NodeReport(node=node, storage_error=error, missing=tuple(missing_data_files(data_name, data_kwargs)))


def node_problems(reports: Sequence[NodeReport], storage: StoragePath, data_name: str) -> list[str]:
    """One line per node that cannot run trials: the storage it cannot reach, the data files it lacks."""
    fix = (
        f"on a cluster of {len(reports)} nodes pass --storage with a location every node reaches (s3://bucket/"
        f"prefix, gs://..., or a shared mount)"
        if storage.is_local
        else "give that node the store's credentials (AWS_* in the environment of its 'ray start', ~/.aws, or an "
        "instance role)"
    )
    out = []
    for r in reports:
        if r.storage_error is not None:
            out.append(f"node {r.node} cannot read the sweep's storage {storage} ({r.storage_error}); {fix}")
        if r.missing:
            more = f" and {len(r.missing) - MISSING_SHOWN} more" if len(r.missing) > MISSING_SHOWN else ""
            out.append(
                f"node {r.node} lacks {len(r.missing)} file(s) or folder(s) of dataset '{data_name}': "
                f"{list(r.missing[:MISSING_SHOWN])}{more}; stage the data at the same path on every node "
                f"(or a shared mount), see README 'Running on a cluster'"
            )
    return out


def storage_needs_marker(n_nodes: int, storage: StoragePath, *, client: bool) -> bool:
    """Whether the nodes must prove they read the driver's storage: on a cluster of more than one node, on any
    cluster when the storage is remote (every node needs its own credentials), and through a ``ray://`` client
    (the driver's disk is not the node's even when the cluster has one node)."""
    return n_nodes > 1 or not storage.is_local or client


def check_nodes(
    storage: StoragePath,
    data_name: str,
    data_kwargs: Mapping[str, Any],
    timeout_s: float = NODE_TASK_TIMEOUT_S,
    *,
    client: bool = False,
) -> int:
    """Probe every alive node of the Ray cluster this process joined; return how many there are.

    The storage marker is written (and checked) when ``storage_needs_marker`` says so (``client``: joined through
    ``ray://``).

    Raises:
        ConfigError: one line naming each node and what it lacks, or the nodes that did not answer in time.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    marker, token = None, uuid.uuid4().hex
    if storage_needs_marker(len(nodes), storage, client=client):
        marker = storage / MARKER
        marker.write_text(token + "\n")
    task = ray.remote(num_cpus=0, max_retries=0)(probe_node)
    try:
        refs = {
            f"{n['NodeManagerAddress']} (id {n['NodeID'][:8]})": task.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False),
            ).remote(marker, token, data_name, dict(data_kwargs))
            for n in nodes
        }
        ready, pending = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
        if pending:
            late = [node for node, ref in refs.items() if ref in pending]
            raise ConfigError(
                f"node(s) {late} did not answer the start-up check within {timeout_s:.0f} s "
                f"(runtime environment not installed? node overloaded?)"
            )
        problems = node_problems(ray.get(ready), storage, data_name)
    finally:
        if marker is not None:
            marker.delete()
    if problems:
        raise ConfigError("; ".join(problems))
    return len(nodes)
