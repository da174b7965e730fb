"""Generator training: a generator is a task on the run engine.

It trains from the *train split only* of an in-memory :class:`FaceDataset` (uint8 tensors moved
to the device once), draws batches with seeded ``torch.randperm`` streams (one per stream the
generator asks for, see :meth:`GeneratorModel.streams`), flips real faces on the device, and
leaves each optimisation step to the generator's ``train_step``. Every so often it:

- appends mean losses to ``log.jsonl`` (one JSON object per line);
- writes ``samples/step_XXXXXXX.png``: one row per emotion, real faces on the left,
  generated ones on the right (translators get a first row with the source faces they
  translate);
- saves ``checkpoint.pt`` atomically: the generator (nets, optimisers, schedulers, EMA, step)
  plus the loop's batch streams and torch RNG states, so ``resume=True`` continues exactly as
  if never stopped. The same file loads with :func:`~feraug.gan.base.load_generator`.

The run folder (new, resumed or restarted from step 0), its manifest and log follow the rules
every training run follows (:mod:`feraug.engine.run_folder`). Device, bf16 autocast on CUDA and
multi-process data parallelism come from :mod:`feraug.engine.device`: under ``torchrun`` every
rank draws its own batches and noise, gradients are averaged before every optimiser step, and
rank 0 alone writes the run folder (the checkpoint holds every rank's batch streams and RNG
states, so a resume with the same number of processes is exact).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from feraug.data.dataset import FaceDataset
from feraug.engine.device import Engine, make_engine
from feraug.engine.rng import capture_rng, restore_rng
from feraug.engine.run_folder import JsonLines, RunFolder, Start
from feraug.errors import CheckpointError, DataError
from feraug.finite import ensure_finite_losses, ensure_finite_weights
from feraug.gan.base import (
    GeneratorModel,
    generator_checkpoint,
    read_generator_checkpoint,
    to_float,
)
from feraug.gan.grids import grid_material, sample_grid
from feraug.gan.meta import GeneratorMeta
from feraug.io import atomic_torch_save, atomic_write_bytes, png_bytes
from feraug.progress import progress_bar
from feraug.resume import GENERATOR_PATHS, check_same_settings
from feraug.tensorboard import FOLDER as TENSORBOARD
from feraug.tensorboard import Board

KIND = "feraug-gan-run"  # the manifest kind of a generator run
CHECKPOINT, LOG, SAMPLES = "checkpoint.pt", "log.jsonl", "samples"


@dataclass
class GanRunResult:
    """What a training run produced."""

    out_dir: Path
    checkpoint: Path
    steps: int
    losses: dict[str, float]


class IndexStream:
    """Endless shuffled passes over a pool of indices (seeded ``torch.randperm``)."""

    def __init__(self, pool: torch.Tensor, seed: int) -> None:
        self.pool = pool
        self.gen = torch.Generator().manual_seed(seed)
        self.order = pool[:0]
        self.pos = 0

    def take(self, k: int) -> torch.Tensor:
        """The next ``k`` indices (a new shuffled pass starts whenever one runs out)."""
        parts = []
        while k > 0:
            if self.pos >= len(self.order):
                self.order = self.pool[torch.randperm(len(self.pool), generator=self.gen)]
                self.pos = 0
            part = self.order[self.pos : self.pos + k]
            self.pos += len(part)
            k -= len(part)
            parts.append(part)
        return torch.cat(parts)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "order": self.order, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.order, self.pos = state["order"], int(state["pos"])


#: What a resumed generator run may change (``feraug gan train --resume --steps N``).
RESUMABLE_CHANGES = frozenset({"steps"})


def _check_restart(out: Path, model: GeneratorModel, manifest: dict, start: Start) -> None:
    """A run folder without a checkpoint may restart only as the same generator and config
    (a checkpoint is checked against ``model`` when it is read, by :func:`_resume`)."""
    if start is not Start.RESTART:
        return
    if manifest.get("model") != model.name:
        raise CheckpointError(f"{out}: holds a {manifest.get('model')} run, not a "
                              f"{model.name} run; refusing to restart into it")
    check_same_settings(out, manifest.get("config") or {},
                        model.config.model_dump(mode="json"), RESUMABLE_CHANGES,
                        model_class=type(model.config), paths=GENERATOR_PATHS)


def _resume(model: GeneratorModel, ckpt: Path, samplers: list[IndexStream],
            train: FaceDataset, engine: Engine) -> None:
    """Restore generator, batch streams and RNG states from the run's checkpoint."""
    state = read_generator_checkpoint(ckpt)
    if state.get("sampling_only") or "trainer" not in state:
        raise CheckpointError(f"{ckpt}: a sampling-only copy of a generator; resume from the "
                              "full checkpoint.pt of its run")
    if state["name"] != model.name:
        raise CheckpointError(f"{ckpt}: holds a {state['name']} run, not {model.name}")
    model.load_state_dict(state["model"])
    model.set_meta(GeneratorMeta.from_stored(state.get("meta")))
    if model.meta.train_fingerprint not in (None, train.fingerprint()):
        raise DataError(f"{train.root}: training data differ from those of the run being "
                        f"resumed ({ckpt})")
    mine = engine.own_state(state["trainer"], ckpt)
    for sampler, s in zip(samplers, mine["streams"], strict=True):
        sampler.load_state_dict(s)
    restore_rng(mine["rng"])


def train_generator(model: GeneratorModel, dataset: FaceDataset, out: str | Path,
                    device: str = "auto", sample_every: int = 500, checkpoint_every: int = 1000,
                    log_every: int = 50, resume: bool = False,
                    meta: Mapping[str, Any] | None = None, progress: bool = True,
                    tensorboard: bool = False) -> GanRunResult:
    """Train ``model`` on ``dataset``'s train split until ``model.config.steps``.

    ``out`` must be new or empty (or, with ``resume``, a generator run folder: it continues
    from its checkpoint.pt, or starts again from step 0 when it has none yet);
    ``sample_every`` / ``checkpoint_every`` / ``log_every`` are step intervals (0: only at the
    end); ``meta`` (:class:`~feraug.gan.meta.GeneratorMeta` fields, e.g. the data path) is
    recorded in the generator's ``meta`` and stored in the manifest and the checkpoint;
    ``tensorboard`` also writes losses and sample grids as TensorBoard events.
    """
    train = dataset.subset("train")
    if train.classes != model.classes or train.size != model.image_size:
        raise DataError(f"{dataset.root}: classes/size {train.classes}/{train.size} do not "
                        f"match the generator's {model.classes}/{model.image_size}")
    streams = model.streams(train.labels)
    if not streams or any(len(pool) == 0 for pool, _ in streams):  # could never fill a batch
        raise DataError(f"{dataset.root}: the train split has no faces for one of "
                        f"{model.name}'s image streams (train counts: "
                        f"{train.class_counts('train')})")
    engine = make_engine(device, model.config.amp)
    with ExitStack() as lock:
        return _train(model, train, dataset, streams, Path(out), engine, sample_every,
                      checkpoint_every, log_every, resume, meta, progress, tensorboard, lock)


def _begin(model: GeneratorModel, train: FaceDataset, dataset: FaceDataset,
           streams: list[tuple[torch.Tensor, int]], folder: RunFolder, engine: Engine,
           resume: bool, meta: Mapping[str, Any] | None) -> tuple[Start, list[IndexStream]]:
    """Ready the folder and the generator: restored from the checkpoint, or fresh (prepared,
    seeded, the same weights on every rank, its meta and the run's manifest written)."""
    start = folder.begin(
        resume, CHECKPOINT, partial=(LOG, SAMPLES, TENSORBOARD),
        check=lambda manifest, start: _check_restart(folder.out, model, manifest, start))
    engine.barrier()
    if start is not Start.RESUME:
        model.prepare()
    model.amp = engine.amp
    model.to(engine.device)
    # rank 0 draws exactly what a single-process run draws; other ranks draw their own
    offset = 7919 * engine.rank
    samplers = [IndexStream(pool, model.config.seed * 1009 + i + offset)
                for i, (pool, _) in enumerate(streams)]
    if start is Start.RESUME:
        _resume(model, folder.out / CHECKPOINT, samplers, train, engine)
        if folder.main:
            folder.log(LOG).truncate_after(model.step)
        return start, samplers
    torch.manual_seed(model.config.seed + offset)
    engine.broadcast_from_main(model.nets.values())
    model.update_meta({**(meta or {}), "train_fingerprint": train.fingerprint(),
                       "data_content": dataset.content_fingerprint(),
                       "train_content": train.content_fingerprint()})
    # a restart records itself afresh: same settings (checked), this start's device and ranks
    extra = {k: v for k, v in model.meta.to_dict().items() if k != "data_fingerprint"}
    folder.write_manifest(model.config.model_dump(mode="json"), model.config.seed,
                          model.meta.data_fingerprint, model=model.name,
                          classes=list(model.classes), image_size=model.image_size,
                          params=model.num_parameters(), device=str(engine.device),
                          world_size=engine.world_size, **extra)
    return start, samplers


def _train(model: GeneratorModel, train: FaceDataset, dataset: FaceDataset,
           streams: list[tuple[torch.Tensor, int]], out: Path, engine: Engine,
           sample_every: int, checkpoint_every: int, log_every: int, resume: bool,
           meta: Mapping[str, Any] | None, progress: bool, tensorboard: bool,
           lock: ExitStack) -> GanRunResult:
    main, dev = engine.is_main, engine.device
    folder = RunFolder(out, KIND, "generator training", main=main, hold=lock)
    start, samplers = _begin(model, train, dataset, streams, folder, engine, resume, meta)
    ckpt, log = out / CHECKPOINT, folder.log(LOG)
    for optimizer in model.optims.values():
        engine.average_gradients(optimizer)
    board = Board(out if tensorboard and main else None,
                  resume_step=model.step + 1 if start is Start.RESUME else None)
    images, labels = train.images.to(dev), train.labels.to(dev)
    real, sources = grid_material(model, train)
    sums: dict[str, torch.Tensor] = {}
    n_logged, t0, steps = 0, time.perf_counter(), model.config.steps
    saved = False

    def save() -> None:
        nonlocal saved
        saved = True
        ensure_finite_weights(model.nets.values(), f"{out}: step {model.step}")
        for net in model.nets.values():  # batch-norm statistics drift apart per rank
            engine.sync_buffers(net)
        ranks = engine.gather({"streams": [s.state_dict() for s in samplers],
                               "rng": capture_rng()})
        if main:
            atomic_torch_save({**generator_checkpoint(model), "trainer": {"ranks": ranks}},
                              ckpt)
        engine.barrier()

    bar = progress_bar(total=steps, initial=model.step, enabled=progress and main,
                       desc=model.name)
    while model.step < steps:
        idx = torch.cat([s.take(k) for s, (_, k) in zip(samplers, streams, strict=True)])
        idx = idx.to(dev)
        x = to_float(images[idx])
        if model.config.flip:
            x = torch.where(torch.rand(len(x), 1, 1, 1, device=dev) < 0.5, x.flip(-1), x)
        for name, value in model.train_step(x, labels[idx]).items():
            sums[name] = sums.get(name, 0.0) + value.float()
        n_logged += 1
        step = model.step
        bar.update(1)
        if (log_every and step % log_every == 0) or step == steps:
            means = _log_losses(log, board, sums, n_logged, len(x), t0, step, out, engine)
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:4]})
            sums, n_logged, t0 = {}, 0, time.perf_counter()
        if main and ((sample_every and step % sample_every == 0) or step == steps):
            grid = sample_grid(model, real, sources)
            atomic_write_bytes(png_bytes(grid), out / SAMPLES / f"step_{step:07d}.png")
            board.image("samples", grid, step)
        if (checkpoint_every and step % checkpoint_every == 0) or step == steps:
            save()
    bar.close()
    board.close()
    if not saved and start is not Start.RESUME:  # zero steps to run: still a loadable file
        save()
    engine.barrier()
    last = {k: v for k, v in log.last().items() if k != "step"}
    return GanRunResult(out, ckpt, model.step, last)


def _log_losses(log: JsonLines, board: Board, sums: dict[str, torch.Tensor], n_logged: int,
                batch: int, t0: float, step: int, out: Path, engine: Engine) -> dict[str, float]:
    """Mean losses of the last ``n_logged`` steps, checked finite, appended to the log (rank
    0); returns them."""
    elapsed = time.perf_counter() - t0
    means = {k: round(float(v) / n_logged, 5) for k, v in sums.items()}
    ensure_finite_losses(means, f"{out}: steps {step - n_logged + 1}-{step}")
    images_per_s = n_logged * batch * engine.world_size / elapsed
    line = {"step": step, "images_per_s": round(images_per_s, 2),
            "seconds_per_step": round(elapsed / n_logged, 4), **means}
    if engine.is_main:
        log.append(line)
        board.scalars(line, step, prefix="gan")
    return means
