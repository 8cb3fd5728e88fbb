"""The single-process (or one-DDP-rank) training loop: ``fit(cfg, report) -> final metrics``.

Run one plain training, without Ray:
    python -m elm.train ablations/cifar10.yaml --set data.root=../shared/data --set optim.epochs=30

``fit`` knows nothing of Ray, Optuna or MLflow: it calls ``report(EpochReport)`` once per epoch (the platform
passes a function that forwards to ``ray.train.report``; tests pass ``list.append``). If ``torch.distributed`` is
initialised (as Ray Train does on each worker), the model is wrapped in DDP, every rank trains on its shard with
``batch_size / world_size`` examples per step, and rank 0 evaluates and writes checkpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, cast

import torch
import torch.distributed as dist
from torch import Tensor, nn

from elm.checkpoint import checkpoint_name, latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint
from elm.config import ConfigError, ExperimentConfig, load_config, parse_set_args
from elm.data import DatasetCorruptError, iterate_batches, load_data
from elm.data.base import FileSplit, LongTailData, TensorSplit, splits_on
from elm.data.file_options import FileLoaderOptions
from elm.metrics import (
    calibration_by_group,
    classification_metrics,
    embedding_statistics,
    margin_statistics,
    posthoc_sweep,
)
from elm.metrics.geometry import FEATURE_SPACES
from elm.metrics.stored_logits import STORED_LOGITS_FILE, save_stored_logits
from elm.losses.base import MultiTermLoss, first_view, views_for
from elm.losses.elm import anchor_diagnostics
from elm.precision import Precision, PrecisionChoice, autocast, choose_precision
from elm.registry import LOSSES, MODELS
from elm.schedule import lr_factor
from elm.seeding import rng_state, seed_everything, set_rng_state
from elm.types import ModelOutput


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf; the last checkpoint is kept."""


@dataclass(frozen=True)
class EpochReport:
    """What ``fit`` reports after each epoch.

    Attributes:
        epoch: 1-based number of completed epochs.
        metrics: flat ``split/name`` -> float (train loss and lr every epoch; eval metrics on eval epochs).
        checkpoint: folder of the checkpoint written at this epoch (rank 0 only), or None.
        per_class: per-class table of the evaluation (JSON-serialisable), on eval epochs of rank 0.
        restored_history: on the first report after a resume, the metrics of every epoch before the checkpoint
            (so a tracker that missed some of them, e.g. after its driver was killed, can fill the gap).
    """

    epoch: int
    metrics: dict[str, float]
    checkpoint: Path | None = None
    per_class: list[dict[str, Any]] | None = None
    restored_history: list[dict[str, float]] | None = None


Reporter = Callable[[EpochReport], Any]


@dataclass
class Experiment:
    """Everything built from a config before the first step."""

    data: LongTailData
    model: nn.Module
    loss: nn.Module
    in_channels: int = field(default=3)


def build_experiment(cfg: ExperimentConfig) -> Experiment:
    """Load the data, then build the model and loss with the data-derived values they declare."""
    data = load_data(cfg.data.name, cfg.data.kwargs)
    in_channels = int(data.train.images.shape[1]) if isinstance(data.train, TensorSplit) else 3
    model = MODELS.build(
        cfg.model.name,
        cfg.model.kwargs,
        num_classes=data.num_classes,
        in_channels=in_channels,
        image_size=data.image_size,
    )
    loss = LOSSES.build(cfg.loss.name, cfg.loss.kwargs, class_counts=data.class_counts)
    if getattr(loss, "uses_projections", False) and not getattr(model, "has_projection", False):
        raise ConfigError(
            f"loss '{cfg.loss.name}' reads a projection head but model '{cfg.model.name}' has none: "
            f"set model.projection_dim"
        )
    return Experiment(data=data, model=model, loss=loss, in_channels=in_channels)


def _autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[Any]:
    return autocast(device, precision)


def _to_device(x: Tensor, y: Tensor, device: torch.device, channels_last: bool) -> tuple[Tensor, Tensor]:
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


@torch.no_grad()
def predict(
    model: nn.Module,
    batches: Iterator[tuple[Tensor, Tensor]],
    device: torch.device,
    *,
    bf16: bool | str,
    channels_last: bool,
    fp16: bool = False,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """Logits (N, C), backbone embeddings (N, D), projections (N, P) or None, and targets (N,) over an evaluation
    iterator, in float32 on CPU.

    The outputs stay on ``device`` until the iterator is exhausted and cross to the CPU once, so a GPU is never
    made to wait for the host between batches. ``bf16``/``fp16``: ``train.bf16``/``train.fp16``
    (``elm.precision.choose_precision``).
    """
    precision = choose_precision(bf16, fp16, device).precision
    was_training = model.training
    model.eval()
    logits, embs, projs, ys = [], [], [], []
    for x, y in batches:
        x, y = _to_device(x, y, device, channels_last)
        with _autocast(device, precision):
            out: ModelOutput = model(x)
        logits.append(out.logits.float())
        embs.append(out.embeddings.float())
        if out.projections is not None:
            projs.append(out.projections.float())
        ys.append(y)
    model.train(was_training)
    return (
        torch.cat(logits).cpu(),
        torch.cat(embs).cpu(),
        torch.cat(projs).cpu() if projs else None,
        torch.cat(ys).cpu(),
    )


TRAIN_SAMPLE_PER_CLASS = 50  # training images per class (at most) in the fixed sample whose geometry is measured


def _geometry(
    embeddings: Tensor, projections: Tensor | None, targets: Tensor, counts: Tensor, prefix: str
) -> tuple[dict[str, float], dict[str, list[dict[str, Any]]]]:
    """``embedding_statistics`` in every space of ``FEATURE_SPACES`` (those the model has), keys
    ``<prefix><space>/...``."""
    features = {"projections": projections, "embeddings": embeddings}
    scalars: dict[str, float] = {}
    per_class: dict[str, list[dict[str, Any]]] = {}
    for space, source in FEATURE_SPACES.items():
        feats = features[source]
        if feats is None:
            continue
        stats = embedding_statistics(feats, targets, counts)
        scalars.update({f"{prefix}{space}/{k}": v for k, v in stats.scalars.items()})
        per_class[space] = stats.per_class
    return scalars, per_class


def train_sample(split: TensorSplit | FileSplit, seed: int, per_class: int = TRAIN_SAMPLE_PER_CLASS) -> Tensor:
    """Indices of a fixed sample of the training split: up to ``per_class`` images of each class, chosen by
    ``seed`` alone (the same images at every evaluation), so every class's geometry is estimated from a similar
    number of examples."""
    labels = torch.as_tensor(split.labels).cpu()  # read one by one below: never from a GPU
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    kept, seen = [], torch.zeros(int(labels.max()) + 1, dtype=torch.int64)
    for i in order.tolist():
        c = int(labels[i])
        if seen[c] < per_class:
            kept.append(i)
            seen[c] += 1
    return torch.tensor(sorted(kept), dtype=torch.int64)


def evaluate(
    model: nn.Module,
    cfg: ExperimentConfig,
    data: LongTailData,
    split_name: str,
    device: torch.device,
    *,
    keep_logits: dict[str, tuple[Tensor, Tensor]] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics of one split: accuracy, Many/Medium/Few, ECE (overall and per group, before and after post-hoc
    adjustment), post-hoc adjusted accuracy per tau, logit margins, and
    the embedding geometry of the split and of a fixed training sample in both spaces of ``FEATURE_SPACES``
    (``elm.metrics.geometry``; keys ``<split>/emb_proj/...`` and ``train/emb_proj/...``).

    ``keep_logits``: when given, ``keep_logits[split_name]`` receives (logits (N, C), labels (N,)) on the CPU.

    Returns:
        The metrics, and one row per class (accuracy, logit margins; the geometry of each space with the space's
        name as key prefix, e.g. ``emb_proj_spread``, ``train_emb_proj_var_ratio``).
    Raises:
        ConfigError: the split does not exist.
    """
    split = data.val if split_name == "val" else data.test
    if split is None:
        raise ConfigError("train.eval_split='val' needs a validation split: set data.val_per_class > 0")
    # File splits decode in train.loader_workers workers, as in training; they end with the evaluation.
    kw: dict[str, Any] = dict(
        train=False,
        mean=data.mean,
        std=data.std,
        image_size=data.image_size,
        seed=cfg.seed,
        epoch=0,
        loader=loader_options(cfg, device, persistent=False),
    )
    batches = iterate_batches(split, batch_size=cfg.train.eval_batch_size, **kw)
    logits, embeddings, projections, targets = predict(
        model, batches, device, bf16=cfg.train.bf16, fp16=cfg.train.fp16, channels_last=cfg.train.channels_last
    )
    counts = data.class_counts
    out = {f"{split_name}/{k}": v for k, v in classification_metrics(logits, targets, counts).items()}
    for tau, m in posthoc_sweep(logits, targets, counts, cfg.train.posthoc_taus).items():
        out.update({f"{split_name}/posthoc_tau{tau:g}/{k}": v for k, v in m.items()})
    out.update(
        {
            f"{split_name}/{k}": v
            for k, v in calibration_by_group(logits, targets, counts, cfg.train.posthoc_taus).items()
        }
    )
    if keep_logits is not None:
        keep_logits[split_name] = (logits, targets)
    stats = margin_statistics(logits, None, targets, counts)
    out.update({f"{split_name}/{k}": v for k, v in stats.scalars.items()})
    geo, geo_rows = _geometry(embeddings, projections, targets, counts, f"{split_name}/")
    out.update(geo)
    sample = data.train.subset(train_sample(data.train, cfg.seed))
    _, t_emb, t_proj, t_y = predict(
        model,
        iterate_batches(sample, batch_size=cfg.train.eval_batch_size, **kw),
        device,
        bf16=cfg.train.bf16,
        fp16=cfg.train.fp16,
        channels_last=cfg.train.channels_last,
    )
    train_geo, train_rows = _geometry(t_emb, t_proj, t_y, counts, "train/")
    out.update(train_geo)
    rows = [dict(r) for r in stats.per_class]
    for where, by_space in (("", geo_rows), ("train_", train_rows)):
        for space, space_rows in by_space.items():
            for row, geo_row in zip(rows, space_rows):
                row.update(
                    {f"{where}{space}_{k}": v for k, v in geo_row.items() if k not in ("class", "train_count", "group")}
                )
    return out, rows


def loader_options(cfg: ExperimentConfig, device: torch.device, *, persistent: bool) -> FileLoaderOptions:
    """The DataLoader settings of a file-backed split (``train.loader_workers``, ``pin_memory``: auto = on CUDA,
    ``prefetch_factor``); workers persist between passes only if ``persistent`` and there are workers."""
    t = cfg.train
    pin = device.type == "cuda" if t.pin_memory == "auto" else bool(t.pin_memory)
    return FileLoaderOptions(
        workers=t.loader_workers,
        pin_memory=pin,
        persistent_workers=persistent and t.loader_workers > 0,
        prefetch_factor=t.prefetch_factor,
    )


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def default_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def data_on_device(cfg: ExperimentConfig, device: torch.device) -> bool:
    """Whether in-memory splits move to ``device`` (``train.data_on_device``; auto: on CUDA)."""
    setting = cfg.train.data_on_device
    return device.type == "cuda" if setting == "auto" else bool(setting)


def _prepare_device(cfg: ExperimentConfig, data: LongTailData, device: torch.device, rank: int) -> LongTailData:
    """Set the device's speed switches, say once (rank 0, stdout) what precision and data placement the run
    uses, and return ``data`` with its in-memory splits on ``device`` when ``train.data_on_device`` says so."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.train.cudnn_benchmark and not cfg.train.deterministic
    choice = choose_precision(cfg.train.bf16, cfg.train.fp16, device)
    on_device = data_on_device(cfg, device)
    if rank == 0:
        where = f"on {device}" if on_device else "on the CPU, copied per batch"
        print(f"elm.train: {choice.precision} on {device} ({choice.reason}); in-memory data {where}", flush=True)
    return splits_on(data, device) if on_device else data


def fit(
    cfg: ExperimentConfig,
    report: Reporter,
    *,
    run_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    device: torch.device | None = None,
    experiment: Experiment | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Train ``cfg`` and return the metrics of the final evaluation.

    Args:
        cfg: a validated config.
        report: called with an ``EpochReport`` after every epoch (on every rank).
        run_dir: where checkpoints go (``run_dir/checkpoints/epoch_NNNN``); None keeps no checkpoints. The last
            epoch's checkpoint also holds ``stored_logits.npz``: the final val/test logits, labels and training
            counts (``elm.metrics.stored_logits``), for post-hoc analysis without retraining.
        resume_from: a checkpoint folder, or ``run_dir`` itself to resume from its newest checkpoint. Resuming from
            the final epoch trains nothing and reports that epoch again (without its per-class table).
        device: defaults to the current CUDA device if any, else CPU.
        experiment: a prebuilt data/model/loss (benchmarks reuse one); built from ``cfg`` when None.
        progress: show a tqdm bar with ETA over each epoch's steps on stderr (rank 0; the CLI turns it on; Ray
            trials and tests leave it off).
    Raises:
        NonFiniteLossError: if the loss becomes NaN/Inf (the last checkpoint stays on disk).
    """
    rank, world = _dist_info()
    device = device or default_device()
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True)
    seed_everything(cfg.seed + rank)
    exp = experiment or build_experiment(cfg)
    model, loss_fn, data = exp.model.to(device), exp.loss.to(device), _prepare_device(cfg, exp.data, device, rank)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=cfg.optim.lr,
        momentum=cfg.optim.momentum,
        weight_decay=cfg.optim.weight_decay,
        nesterov=cfg.optim.nesterov,
    )
    scaler = _grad_scaler(cfg, device)
    start_epoch, history = _restore(resume_from, model, optimizer, rank, scaler)
    restored: list[dict[str, float]] | None = list(history) or None
    ckpt_root = Path(run_dir) / "checkpoints" if run_dir is not None else None
    if start_epoch >= cfg.optim.epochs and history:
        # Resumed from the last epoch's checkpoint (a restarted trial whose run had already ended): report that
        # epoch again so the caller gets the final result; the epochs before it come as restored history.
        report(
            EpochReport(
                epoch=start_epoch,
                metrics=history[-1],
                checkpoint=None,
                per_class=None,
                restored_history=history[:-1] or None,
            )
        )
        return dict(history[-1])
    loop = _Loop.build(cfg, model, loss_fn, data, optimizer, device, rank, world, progress, scaler)
    final: dict[str, float] = {}
    for epoch in range(start_epoch, cfg.optim.epochs):
        metrics = loop.train_epoch(epoch)
        per_class = None
        last = epoch + 1 == cfg.optim.epochs
        final_logits: dict[str, tuple[Tensor, Tensor]] | None = {} if last else None  # stored for post-hoc analysis
        if rank == 0 and ((epoch + 1) % cfg.train.eval_every == 0 or last):
            eval_metrics, per_class = evaluate(model, cfg, data, cfg.train.eval_split, device, keep_logits=final_logits)
            metrics.update(eval_metrics)
            if last and cfg.train.eval_split != "test":
                # Selection reads the validation split every evaluation; the test split is measured once, at the
                # end, for reports (its per-class table replaces the validation one in the final report).
                test_metrics, per_class = evaluate(model, cfg, data, "test", device, keep_logits=final_logits)
                metrics.update(test_metrics)
            final = metrics
        checkpoint = None
        if ckpt_root is not None and rank == 0 and ((epoch + 1) % cfg.train.checkpoint_every == 0 or last):
            checkpoint = save_checkpoint(
                ckpt_root / checkpoint_name(epoch + 1),
                _checkpoint_state(cfg, model, optimizer, epoch + 1, history + [metrics], scaler),
            )
            prune_checkpoints(ckpt_root, cfg.train.keep_checkpoints)
            if final_logits:  # inside the final checkpoint, which Ray persists and platform.tracking logs to MLflow
                save_stored_logits(checkpoint / STORED_LOGITS_FILE, final_logits, data.class_counts)
        history.append(metrics)
        report(
            EpochReport(
                epoch=epoch + 1, metrics=metrics, checkpoint=checkpoint, per_class=per_class, restored_history=restored
            )
        )
        restored = None
    return final


def _grad_scaler(cfg: ExperimentConfig, device: torch.device) -> torch.amp.GradScaler | None:
    """The loss scaler of fp16 training (``train.fp16``), else None."""
    fp16 = choose_precision(cfg.train.bf16, cfg.train.fp16, device).precision == "fp16"
    return torch.amp.GradScaler(device.type) if fp16 else None


def _restore(
    resume_from: str | Path | None,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rank: int,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[int, list[dict[str, float]]]:
    """Load the newest checkpoint under ``resume_from`` (a run folder or a checkpoint folder) into ``model``,
    ``optimizer`` and ``scaler`` (fp16) and restore this rank's RNG; return (epochs done, every epoch's metrics).
    (0, []) if none."""
    if resume_from is None:
        return 0, []
    source = Path(resume_from)
    found = latest_checkpoint(source / "checkpoints") if (source / "checkpoints").is_dir() else source
    if found is None:
        return 0, []
    state = load_checkpoint(found)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"][rank] if isinstance(state["rng"], list) else state["rng"])
    if scaler is not None and "grad_scaler" in state:
        scaler.load_state_dict(state["grad_scaler"])
    return int(state["epoch"]), list(state.get("history", []))


def _checkpoint_state(
    cfg: ExperimentConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    history: list[dict[str, float]],
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "rng": rng_state(),
        "config": cfg.to_dict(),
        "history": history,
    }
    if scaler is not None:
        state["grad_scaler"] = scaler.state_dict()  # fp16: the loss scale, so a resume continues exactly
    return state


@dataclass
class _Loop:
    """What one training epoch needs; ``train_epoch`` runs it and returns the epoch's ``train/`` metrics."""

    cfg: ExperimentConfig
    train_model: nn.Module  # DDP-wrapped under torch.distributed
    compiled_model: nn.Module  # train_model, or its torch.compile
    loss_fn: nn.Module
    data: LongTailData
    optimizer: torch.optim.Optimizer
    device: torch.device
    rank: int
    world: int
    progress: bool
    views: int
    per_rank_batch: int
    steps_per_epoch: int
    precision: PrecisionChoice
    scaler: torch.amp.GradScaler | None  # fp16 only
    loader: FileLoaderOptions  # file-backed splits only

    @classmethod
    def build(
        cls,
        cfg: ExperimentConfig,
        model: nn.Module,
        loss_fn: nn.Module,
        data: LongTailData,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        rank: int,
        world: int,
        progress: bool,
        scaler: torch.amp.GradScaler | None = None,
    ) -> _Loop:
        train_model: nn.Module = model
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            train_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        # With train.compile, full batches go through the compiled module; a smaller last batch uses the eager one
        # (same parameters), which avoids a recompile for a second shape.
        compiled_model = cast(nn.Module, torch.compile(train_model)) if cfg.train.compile else train_model
        per_rank_batch = max(1, cfg.optim.batch_size // world)
        steps = math.ceil(math.ceil(len(data.train) / world) / per_rank_batch)
        if cfg.train.max_steps_per_epoch:
            steps = min(steps, cfg.train.max_steps_per_epoch)
        model.train()
        precision = choose_precision(cfg.train.bf16, cfg.train.fp16, device)
        scaler = scaler if scaler is not None else _grad_scaler(cfg, device)
        loader = loader_options(cfg, device, persistent=cfg.train.persistent_workers)
        return cls(
            cfg,
            train_model,
            compiled_model,
            loss_fn,
            data,
            optimizer,
            device,
            rank,
            world,
            progress,
            views_for(loss_fn, cfg.train.views),
            per_rank_batch,
            steps,
            precision,
            scaler,
            loader,
        )

    def loss(self, out: ModelOutput, y: Tensor, batch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The training loss and, for a multi-term loss, its parts. ``out`` and ``y`` hold every view."""
        if isinstance(self.loss_fn, MultiTermLoss):
            terms = self.loss_fn.terms(out, y, self.views)
            return self.loss_fn.combine(terms), terms
        return self.loss_fn(first_view(out, batch), y[:batch]), {}  # single-term losses read view 0

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch of steps. The host waits for the device only every ``train.check_finite_every`` steps (to
        look for a non-finite loss) and once at the end (for the metrics), except under ``train.fp16``: the
        ``GradScaler`` reads its overflow flag on the host at every step.

        Raises:
            NonFiniteLossError: naming the first step whose loss was NaN or Inf; raised before the epoch ends, so
                no checkpoint is written after it.
        """
        cfg, optim = self.cfg, self.optimizer
        t0 = time.perf_counter()
        total, count = torch.zeros((), device=self.device), 0
        # Summed in float64 on the device: the same sums as Python floats, without a host sync per step.
        terms_sum: dict[str, Tensor] = {}
        anchor_sums: dict[str, Tensor] = {}
        guard = _FiniteGuard(self.device)
        batches = iterate_batches(
            self.data.train,
            batch_size=self.per_rank_batch,
            train=True,
            mean=self.data.mean,
            std=self.data.std,
            image_size=self.data.image_size,
            seed=cfg.seed,
            epoch=epoch,
            rank=self.rank,
            world_size=self.world,
            views=self.views,
            loader=self.loader,
            device=self.device,
        )
        if self.progress and self.rank == 0:
            batches = _with_progress(batches, self.steps_per_epoch, f"epoch {epoch + 1}/{cfg.optim.epochs}")
        for step, (x, y) in enumerate(batches):
            if step >= self.steps_per_epoch:
                break
            for group in optim.param_groups:
                group["lr"] = cfg.optim.lr * lr_factor(
                    epoch * self.steps_per_epoch + step, self.steps_per_epoch, cfg.optim
                )
            x, y = _to_device(x, y, self.device, cfg.train.channels_last)
            batch = len(y) // self.views  # images in this step (each seen in every view)
            with _autocast(self.device, self.precision.precision):
                out = (self.compiled_model if batch == self.per_rank_batch else self.train_model)(x)
            loss, terms = self.loss(out, y, batch)
            guard.record(loss, step)
            optim.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(optim)  # skips the update when the scaled gradients overflowed
                self.scaler.update()
            else:
                loss.backward()
                optim.step()
            total += loss.detach() * batch
            count += batch
            for k, v in terms.items():
                terms_sum[k] = terms_sum.get(k, 0) + v.detach().double() * batch
            if terms and isinstance(self.loss_fn, MultiTermLoss):
                for k, v in self.loss_fn.anchor_statistics(y).items():
                    anchor_sums[k] = anchor_sums.get(k, 0) + torch.as_tensor(v).detach().double()
            if (step + 1) % cfg.train.check_finite_every == 0:
                self._raise_if_nonfinite(guard, epoch)
        self._raise_if_nonfinite(guard, epoch)
        elapsed = time.perf_counter() - t0
        metrics = {
            "train/loss": float(total) / max(count, 1),
            "train/lr": optim.param_groups[0]["lr"],
            "train/epoch_seconds": elapsed,
            "train/images_per_sec": count * self.world / elapsed if elapsed > 0 else 0.0,  # images, not views
            "train/views": float(self.views),
            "epoch": float(epoch + 1),
        }
        metrics.update({f"train/loss_{k}": float(v) / max(count, 1) for k, v in terms_sum.items()})
        metrics.update(
            {f"train/{k}": v for k, v in anchor_diagnostics({k: float(v) for k, v in anchor_sums.items()}).items()}
        )
        return metrics

    def _raise_if_nonfinite(self, guard: _FiniteGuard, epoch: int) -> None:
        """Wait for the device and raise ``NonFiniteLossError`` if any step so far had a non-finite loss."""
        found = guard.first_bad()
        if found is None:
            return
        step, value = found
        lr = self.cfg.optim.lr * lr_factor(epoch * self.steps_per_epoch + step, self.steps_per_epoch, self.cfg.optim)
        raise NonFiniteLossError(
            f"{self.cfg.name}: training loss is {value} at epoch {epoch + 1}, step {step + 1} "
            f"(lr {lr:.4g}); lower optim.lr or check the data. Checkpoints written before it are kept."
        )


class _FiniteGuard:
    """Remembers, on the device, the first step whose loss was NaN or Inf, without waiting for the device."""

    def __init__(self, device: torch.device) -> None:
        self.step = torch.full((), -1, dtype=torch.int64, device=device)  # -1: none yet
        self.value = torch.zeros((), dtype=torch.float32, device=device)

    def record(self, loss: Tensor, step: int) -> None:
        """Note ``loss`` (a scalar) of 0-based ``step``; only the first non-finite one is kept."""
        first = ~torch.isfinite(loss.detach()) & (self.step < 0)
        self.step = torch.where(first, step, self.step)
        self.value = torch.where(first, loss.detach().float(), self.value)

    def first_bad(self) -> tuple[int, float] | None:
        """(step, loss) of the first non-finite loss, or None; reading it waits for the device."""
        step = int(self.step)
        return None if step < 0 else (step, float(self.value))


def _with_progress(batches: Iterator[tuple[Tensor, Tensor]], steps: int, desc: str) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield the first ``steps`` of ``batches`` while a tqdm bar (steps done, rate, ETA) counts them on stderr.

    The bar clears itself when the epoch's steps are done, before the epoch's summary line is printed. Batches
    depend only on (seed, epoch), so not drawing the ones past ``steps`` changes nothing.
    """
    from tqdm import tqdm  # only the CLI shows progress; trials never import it

    # Redrawn every 0.1 s on a terminal; into a log file (not a terminal) every 30 s, so logs stay short.
    every_s = 0.1 if sys.stderr.isatty() else 30.0
    with tqdm(
        total=steps, desc=desc, unit="step", file=sys.stderr, leave=False, dynamic_ncols=True, mininterval=every_s
    ) as bar:
        for batch in itertools.islice(batches, steps):
            yield batch
            bar.update()


def _print_report(r: EpochReport) -> None:
    m = r.metrics
    keys: list[str] = [k for k in ("train/loss", "train/images_per_sec") if k in m]
    headline = ("/balanced_acc", "/acc_many", "/acc_medium", "/acc_few")
    keys += [k for k in m if k.endswith(headline) and "posthoc" not in k]
    keys += [k for k in m if k.endswith("posthoc_tau1/balanced_acc")]
    print(f"epoch {r.epoch:3d}  " + "  ".join(f"{k}={m[k]:.4g}" for k in keys), flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m elm.train CONFIG [--set k=v ...] [--out DIR] [--resume] [--no-progress]``.

    Returns:
        0 on success; 2 for a config that does not validate or an unusable ``--out``; 1 for an error found while
        loading data or training (a class without images, missing or corrupt data files, a non-finite loss).
        Each error is one ``error: ...`` line on stderr.
    """
    parser = argparse.ArgumentParser(prog="python -m elm.train", description="Train one config without Ray.")
    parser.add_argument("config", help="experiment YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=None, help="run folder (default runs/<name>-seed<seed>)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a progress bar with ETA over each epoch's steps on stderr (default: on)",
    )
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, parse_set_args(args.overrides))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out or f"runs/{cfg.name}-seed{cfg.seed}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(cfg.to_yaml())
        log = (out / "metrics.jsonl").open("a")
    except OSError as e:
        print(f"error: --out {out}: cannot write the run folder there ({e.strerror or e})", file=sys.stderr)
        return 2

    def report(r: EpochReport) -> None:
        _print_report(r)
        log.write(json.dumps({"epoch": r.epoch, **r.metrics}) + "\n")
        log.flush()
        if r.per_class is not None:
            (out / "per_class.json").write_text(json.dumps(r.per_class, indent=1))

    error = None
    try:
        final = fit(cfg, report, run_dir=out, resume_from=out if args.resume else None, progress=args.progress)
    except (ConfigError, NonFiniteLossError, FileNotFoundError, DatasetCorruptError) as e:
        error = f"error: {e}"  # printed once the traceback is gone, which closes (clears) an open progress bar
    finally:
        log.close()
    if error is not None:
        print(error, file=sys.stderr)
        return 1
    (out / "final.json").write_text(json.dumps(final, indent=1))
    print(f"final metrics in {out / 'final.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
