"""``fit``: the classifier training loop (one screen), resumable exactly, data-parallel via
torchrun, model selection on the validation split only."""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from feraug.classifier.augment import augment_batch
from feraug.classifier.batches import TensorBatches
from feraug.classifier.config import TrainConfig
from feraug.classifier.distill import Teacher
from feraug.classifier.infer import predict_proba, to_model_input
from feraug.classifier.metrics import classification_metrics
from feraug.classifier.setup import (
    build_loss,
    build_model,
    build_optimizer,
    build_scheduler,
    load_training_data,
)
from feraug.data.dataset import FaceDataset
from feraug.engine.device import Engine, make_engine
from feraug.engine.rng import capture_rng, restore_rng
from feraug.engine.run_folder import RunFolder, Start
from feraug.errors import DataError
from feraug.finite import ensure_finite_losses, ensure_finite_weights
from feraug.io import refuse_output_inside
from feraug.models.checkpoint import read_checkpoint, save_checkpoint
from feraug.progress import progress_bar
from feraug.resume import CLASSIFIER_PATHS, check_same_settings
from feraug.tensorboard import FOLDER as TENSORBOARD
from feraug.tensorboard import Board

CRASH_ENV = "FERAUG_TEST_CRASH_AFTER_STEP"  # fault injection for the resume test


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


@dataclass
class FitResult:
    """Where a run's outputs are and how it ended."""

    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_val: dict
    history: list[dict] = field(default_factory=list)
    model: torch.nn.Module | None = None
    # wall-clock seconds of the training loop (validation included; data loading and model
    # building not) kept in the checkpoints, over every call that resumed it (time after the
    # last checkpoint of a killed call is not counted: it is redone); 0.0 when the run
    # resumed a checkpoint written before this was kept, and trained no further
    train_seconds: float = 0.0


@dataclass
class RunState:
    """Counters that a checkpoint must restore."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float = -1.0  # best value of the selection metric (config.select_metric)
    best_val: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    # the running epoch's loss total and image count, so that an epoch resumed mid-way
    # reports the mean over all its batches
    loss_sum: float = 0.0
    loss_count: int = 0
    train_seconds: float = 0.0  # see FitResult.train_seconds


def _meta(config: TrainConfig, ds: FaceDataset) -> dict:
    return {
        "model_name": config.model,
        "classes": list(ds.classes),
        "image_size": config.image_size,
        "crop_size": config.crop_size,
        "tta": config.tta,
        "config": config.model_dump(),
        "data_fingerprint": ds.fingerprint(),
        # which real faces were in which split: an ensemble or comparison of checkpoints is
        # only fair when this matches (synthetic images do not count)
        "split_fingerprint": ds.content_fingerprint(with_splits=True),
        "data_content": ds.content_fingerprint(),
    }


def _aug_seed(config: TrainConfig, rank: int, step: int = 0) -> int:
    """The augmentation stream's seed: each rank draws its own; ``step`` > 0 seeds it anew
    for a resume whose stored stream was made on another device type."""
    return config.seed * 7919 + rank + 1_000_003 * step


def _clock_in(state: RunState, since: float) -> float:
    """Add the seconds since ``since`` to ``state.train_seconds``; returns now."""
    now = time.perf_counter()
    state.train_seconds += now - since
    return now


def _keep_if_best(row: dict, state: RunState, config: TrainConfig, model, meta: dict,
                  best_path: Path, show: bool) -> None:
    """Print an epoch's row and save ``best.pt`` when its selection metric is the best so
    far (main process only)."""
    if show:
        tqdm.write(f"epoch {row['epoch']}: loss {row['train_loss']:.4f} "
                   f"val acc {row['val_accuracy']:.4f} "
                   f"macro-F1 {row['val_macro_f1']:.4f}", file=sys.stderr)
    score = row[f"val_{config.select_metric}"]
    if score > state.best_score:
        state.best_score = score
        state.best_val = row
        save_checkpoint(best_path, {**meta, "model": unwrap(model).state_dict(),
                                    "val_metrics": row, "step": state.step})


def _save_last(path: Path, model, opt, sched, state: RunState, aug_gen: torch.Generator,
               meta: dict, engine: Engine) -> None:
    """Write ``last.pt`` (from rank 0) with every rank's RNG and augmentation states, so that
    a resume with as many processes gives each rank back its own streams. Every rank must
    call it (the states are gathered)."""
    ranks = engine.gather(capture_rng(augment=aug_gen))
    if engine.is_main:
        save_checkpoint(path, {
            **meta,
            "model": unwrap(model).state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "rng": {"ranks": ranks},
            "run_state": {k: v for k, v in state.__dict__.items()},
        })
    engine.barrier()


def _restore(path: Path, model, opt, sched, aug_gen: torch.Generator, config: TrainConfig,
             engine: Engine) -> RunState:
    """Load ``last.pt`` into the model, optimiser, scheduler and this rank's RNG states."""
    ckpt = read_checkpoint(path)
    mine = engine.own_state(ckpt["rng"], path)
    unwrap(model).load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    if sched is not None and ckpt["scheduler"] is not None:
        sched.load_state_dict(ckpt["scheduler"])
    run_state = dict(ckpt["run_state"])
    if "best_val_accuracy" in run_state:  # the name in checkpoints written before 2026-11-23
        run_state["best_score"] = run_state.pop("best_val_accuracy")
    state = RunState(**run_state)
    restore_rng(mine, reseed=_aug_seed(config, engine.rank, state.step),
                augment=aug_gen)
    return state


def validate(model, val: FaceDataset, config: TrainConfig, engine: Engine) -> dict:
    """Accuracy and macro-F1 on the validation split (the only split used for selection)."""
    with engine.autocast():
        probs = predict_proba(unwrap(model), val.images, config.crop_size, config.tta)
    m = classification_metrics(val.labels.numpy(), probs.argmax(1).numpy(), val.classes)
    return {"val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"],
            "val_recall": {c: v["recall"] for c, v in m["per_class"].items()}}


#: Settings a resumed run may change: how long it runs, where and how often it saves.
RESUMABLE_CHANGES = frozenset({"epochs", "max_steps", "device", "checkpoint_every", "out",
                               "tensorboard"})


def _check_same_run(out: Path, manifest: dict, config: TrainConfig,
                    data_fingerprint: str) -> None:
    """Refuse to continue the run of ``manifest`` unless it has this very config and data
    (only :data:`RESUMABLE_CHANGES` may differ)."""
    check_same_settings(out, manifest.get("config") or {}, config.model_dump(mode="json"),
                        RESUMABLE_CHANGES, model_class=TrainConfig, paths=CLASSIFIER_PATHS)
    if manifest.get("data_fingerprint") not in (None, data_fingerprint):
        raise DataError(f"{config.data}: the data differ from those of the run in {out}")


@dataclass
class _Loop:
    """What the steps of one training run use, built once by ``_fit``."""

    config: TrainConfig
    engine: Engine
    model: torch.nn.Module
    step_model: torch.nn.Module  # ``model`` or its torch.compile wrapper
    opt: torch.optim.Optimizer
    sched: object
    loss_fn: torch.nn.Module
    teacher: Teacher | None
    aug_gen: torch.Generator
    images: torch.Tensor  # uint8 training faces on the device
    labels: torch.Tensor
    out: Path

    @classmethod
    def build(cls, config: TrainConfig, engine: Engine, ds: FaceDataset, out: Path,
              teacher: Teacher | None, fused_optimizer: bool) -> _Loop:
        """The network (on the device, wrapped for DDP), its optimiser, schedule, loss and
        augmentation stream, and the training faces on the device."""
        train = ds.subset("train")
        model = build_model(config, ds.num_classes)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model = engine.wrap(model)
        opt = build_optimizer(config, model, fused=fused_optimizer)
        return cls(config, engine, model, torch.compile(model) if config.compile else model,
                   opt, build_scheduler(config, opt),
                   build_loss(config, train.labels, ds.num_classes, engine.device), teacher,
                   torch.Generator(engine.device).manual_seed(_aug_seed(config, engine.rank)),
                   train.images.to(engine.device), train.labels.to(engine.device), out)

    def train_batch(self, idx: torch.Tensor, state: RunState) -> None:
        """One optimiser step on the training faces at ``idx``; counts it in ``state``."""
        config, engine = self.config, self.engine
        idx = idx.to(engine.device)
        x = augment_batch(to_model_input(self.images[idx]), config.augment, config.crop_size,
                          self.aug_gen)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with engine.autocast():
            # the loss in float32: under CPU bf16 autocast the logits come back in bf16
            logits = self.step_model(x).float()
            loss = self.loss_fn(logits, self.labels[idx])
            if self.teacher is not None:
                loss = self.teacher.blend(loss, logits, x)
        loss_value = float(loss.detach())
        ensure_finite_losses({"loss": loss_value},
                             f"{self.out}: step {state.step + 1} (epoch {state.epoch + 1})")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        state.step += 1
        state.batch_in_epoch += 1
        state.loss_sum += loss_value * len(idx)
        state.loss_count += len(idx)

    def end_epoch(self, state: RunState, val: FaceDataset, complete: bool) -> dict:
        """Check the weights, validate, and return the epoch's row; a ``complete`` epoch
        (not one cut short by ``max_steps``) also steps the scheduler and the epoch count."""
        model = self.model
        ensure_finite_weights([model], f"{self.out}: step {state.step} "
                                       f"(epoch {state.epoch + 1})")
        self.engine.sync_buffers(model)
        row = {"epoch": state.epoch + 1, "step": state.step,
               "train_loss": state.loss_sum / max(state.loss_count, 1),
               "lr": self.opt.param_groups[0]["lr"],
               **validate(model, val, self.config, self.engine)}
        if complete:
            if isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.sched.step(row["val_accuracy"])
            elif self.sched is not None:
                self.sched.step()
            state.epoch += 1
            state.batch_in_epoch = 0
        return row


def fit(config: TrainConfig, dataset: FaceDataset | None = None, resume: bool = False,
        fused_optimizer: bool = False) -> FitResult:
    """Train a classifier as ``config`` says; the best checkpoint is chosen on ``val``.

    The run's folder is locked while it trains: a second process training into it fails
    at once with :class:`~feraug.engine.run_lock.RunInUseError`."""
    engine = make_engine(config.device, config.amp, config.cpu_bf16)
    with ExitStack() as lock:
        return _fit(config, engine, dataset, resume, fused_optimizer, lock)


def _fit(config: TrainConfig, engine: Engine, dataset: FaceDataset | None, resume: bool,
         fused_optimizer: bool, lock: ExitStack) -> FitResult:
    torch.manual_seed(config.seed)
    ds = load_training_data(config, dataset)
    train, val = ds.subset("train"), ds.subset("val")
    out = Path(config.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    refuse_output_inside(out, [config.data, *config.synthetic], "the training data")
    teacher = None
    if config.teacher is not None:  # checked before the run folder is touched
        with torch.random.fork_rng(devices=[]):  # building it draws weights: keep the seed's
            teacher = Teacher(config.teacher, ds.classes, config.image_size, config.crop_size,
                              engine.device, config.distill_temperature, config.distill_weight)
    folder = RunFolder(out, "train", "classifier training", main=engine.is_main, hold=lock)
    start = folder.begin(
        resume, last_path.name, partial=("metrics.jsonl", best_path.name, TENSORBOARD),
        check=lambda manifest, _: _check_same_run(out, manifest, config, ds.fingerprint()))
    if start is Start.NEW:  # a continued or restarted run keeps the manifest it began with
        folder.write_manifest(config.model_dump(), config.seed, ds.fingerprint(),
                              data_summary=ds.summary(), world_size=engine.world_size)
    metrics = folder.log("metrics.jsonl")
    engine.barrier()

    loop = _Loop.build(config, engine, ds, out, teacher, fused_optimizer)
    model, opt, sched, aug_gen = loop.model, loop.opt, loop.sched, loop.aug_gen
    state = RunState()
    if start is Start.RESUME:
        state = _restore(last_path, model, opt, sched, aug_gen, config, engine)
        if engine.is_main:
            # by count, not step: a mid-epoch last.pt saved at an epoch's last step precedes
            # that epoch's row of the same step, which the resumed run writes again
            metrics.keep_first(len(state.history))
    meta = _meta(config, ds)

    batches = TensorBatches(train.labels, config.batch_size, config.seed,
                            balanced=config.balanced_sampling, rank=engine.rank,
                            world_size=engine.world_size)
    crash_at = int(os.environ.get(CRASH_ENV, "0"))
    show = engine.is_main and not os.environ.get("FERAUG_QUIET")
    board = Board(out if config.tensorboard and engine.is_main else None,
                  resume_step=state.step + 1 if start is Start.RESUME else None)
    done = config.max_steps is not None and state.step >= config.max_steps
    clock = time.perf_counter()
    while state.epoch < config.epochs and not done:
        model.train()
        if state.batch_in_epoch == 0:
            state.loss_sum, state.loss_count = 0.0, 0
        bar = progress_bar(total=batches.batches_per_epoch(), initial=state.batch_in_epoch,
                           desc=f"epoch {state.epoch + 1}/{config.epochs}", enabled=show,
                           leave=False)
        for idx in batches.epoch(state.epoch, skip=state.batch_in_epoch):
            loop.train_batch(idx, state)
            bar.update(1)
            if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                clock = _clock_in(state, clock)
                _save_last(last_path, model, opt, sched, state, aug_gen, meta, engine)
            if crash_at and state.step == crash_at:
                os._exit(3)
            if config.max_steps is not None and state.step >= config.max_steps:
                done = True
                break
        bar.close()
        row = loop.end_epoch(state, val,
                             complete=not done
                             or state.batch_in_epoch >= batches.batches_per_epoch())
        state.history.append(row)
        if engine.is_main:
            metrics.append(row)
            board.scalars({k: v for k, v in row.items() if k not in ("epoch", "step")},
                          state.step, prefix="train")
            _keep_if_best(row, state, config, model, meta, best_path, show)
        clock = _clock_in(state, clock)
        _save_last(last_path, model, opt, sched, state, aug_gen, meta, engine)
    board.close()
    engine.barrier()
    return FitResult(out_dir=out, best_checkpoint=best_path, last_checkpoint=last_path,
                     best_val=state.best_val, history=state.history, model=unwrap(model),
                     train_seconds=state.train_seconds)
