"""The one training driver every generator uses.

It trains from the *train split only* of an in-memory :class:`FaceDataset` (uint8 tensors moved
to the device once), draws batches with seeded ``torch.randperm`` streams (one per stream the
generator asks for, see :meth:`GeneratorModel.streams`), flips real faces on the device, runs
bf16 autocast on CUDA (plain fp32 on CPU), and every so often:

- appends mean losses to ``log.jsonl`` (one JSON object per line);
- writes ``samples/step_XXXXXXX.png``: one row per emotion, real faces on the left,
  generated ones on the right (translators get a first row with the source faces they
  translate);
- saves ``checkpoint.pt`` atomically: the generator (nets, optimisers, schedulers, EMA, step)
  plus the trainer's batch streams and torch RNG states, so ``resume=True`` continues
  exactly as if never stopped. The same file loads with :func:`load_generator`.

Device, mixed precision and multi-process data parallelism come from the classifier engine
(:mod:`feraug.training.engine`): under ``torchrun`` every rank draws its own batches and noise,
gradients are averaged before every optimiser step, and rank 0 alone writes the run folder
(the checkpoint holds every rank's batch streams and RNG states, so a resume with the same
number of processes is exact).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import make_grid

from feraug.data.dataset import FaceDataset
from feraug.errors import CheckpointError, DataError
from feraug.finite import ensure_finite_losses, ensure_finite_weights
from feraug.gan.base import (
    GeneratorModel,
    generator_checkpoint,
    read_generator_checkpoint,
    to_float,
)
from feraug.gan.meta import GeneratorMeta
from feraug.io import (
    atomic_torch_save,
    atomic_write_bytes,
    png_bytes,
    prepare_output_dir,
    write_json,
)
from feraug.manifest import build_manifest
from feraug.progress import progress_bar
from feraug.resume import check_same_settings, read_run_manifest, start_again
from feraug.tensorboard import Board
from feraug.training.engine import Engine, make_engine

GRID_COLUMNS = 8


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


def _rng_state() -> dict:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def grid_material(model: GeneratorModel, train: FaceDataset, k: int = GRID_COLUMNS
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Fixed real faces per emotion and (for translators) fixed source faces for the grid."""
    gen = torch.Generator().manual_seed(1234)
    order = torch.randperm(len(train), generator=gen)
    labels = train.labels[order]
    real = {e: train.images[order[labels == train.classes.index(e)][:k]]
            for e in model.emotions()}
    sources = None
    if model.needs_sources:
        pick = order if model.source_emotion is None else \
            order[labels == train.classes.index(model.source_emotion)]
        sources = train.images[pick[:k]]
    return real, sources


def sample_grid(model: GeneratorModel, real: dict[str, torch.Tensor],
                sources: torch.Tensor | None, seed: int = 0) -> torch.Tensor:
    """uint8 ``[1, H, W]`` grid: per emotion, real faces then generated ones."""
    k = max([len(v) for v in real.values()] + [1])
    s = model.image_size
    blank = torch.full((k, 1, s, s), 255, dtype=torch.uint8)

    def pad(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, blank[: k - len(x)]])

    rows = [] if sources is None else [pad(sources), blank]
    for emotion, faces in real.items():
        rows += [pad(faces), pad(model.sample(emotion, k, seed, sources))]
    grid = make_grid(torch.cat(rows).float() / 255.0, nrow=2 * k, padding=2, pad_value=1.0)
    return (grid[:1] * 255).round().to(torch.uint8)



def _truncate_log(log: Path, step: int) -> None:
    """Drop log lines written after the checkpoint being resumed."""
    if log.is_file():
        keep = [ln for ln in log.read_text().splitlines() if ln.strip()
                and json.loads(ln).get("step", 0) <= step]
        atomic_write_bytes(("".join(f"{ln}\n" for ln in keep)).encode(), log)


#: What a resumed generator run may change (``feraug gan train --resume --steps N``).
RESUMABLE_CHANGES = frozenset({"steps"})


def _check_restart(out: Path, model: GeneratorModel) -> None:
    """A run folder without a checkpoint may restart only as the same generator and config."""
    manifest = read_run_manifest(out, "feraug-gan-run", "generator training")
    if manifest.get("model") != model.name:
        raise CheckpointError(f"{out}: holds a {manifest.get('model')} run, not a "
                              f"{model.name} run; refusing to restart into it")
    check_same_settings(out, manifest.get("config") or {},
                        model.config.model_dump(mode="json"), RESUMABLE_CHANGES,
                        model_class=type(model.config))


def _resume(model: GeneratorModel, ckpt: Path, samplers: list[IndexStream],
            train: FaceDataset, engine: Engine) -> None:
    """Restore generator, batch streams and RNG states from the run's checkpoint."""
    if not ckpt.is_file():
        raise CheckpointError(f"{ckpt}: nothing to resume (no checkpoint yet)")
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
    ranks = state["trainer"].get("ranks", [state["trainer"]])
    if len(ranks) != engine.world_size:
        raise CheckpointError(f"{ckpt}: was trained by {len(ranks)} process(es); resume it "
                              f"with as many (this run has {engine.world_size})")
    mine = ranks[engine.rank]
    for sampler, s in zip(samplers, mine["streams"], strict=True):
        sampler.load_state_dict(s)
    _set_rng_state(mine["rng"])


def train_generator(model: GeneratorModel, dataset: FaceDataset, out: str | Path,
                    device: str = "auto", sample_every: int = 500, checkpoint_every: int = 1000,
                    log_every: int = 50, resume: bool = False,
                    meta: Mapping[str, Any] | None = None, progress: bool = True,
                    tensorboard: bool = False) -> GanRunResult:
    """Train ``model`` on ``dataset``'s train split until ``model.config.steps``.

    ``out`` must be new or empty (or, with ``resume``, a run folder holding checkpoint.pt);
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
    try:
        return _train(model, train, dataset, streams, Path(out), engine, sample_every,
                      checkpoint_every, log_every, resume, meta, progress, tensorboard)
    finally:
        engine.close()


def _train(model: GeneratorModel, train: FaceDataset, dataset: FaceDataset,
           streams: list[tuple[torch.Tensor, int]], out: Path, engine: Engine,
           sample_every: int, checkpoint_every: int, log_every: int, resume: bool,
           meta: Mapping[str, Any] | None, progress: bool, tensorboard: bool) -> GanRunResult:
    main, dev = engine.is_main, engine.device
    ckpt, log = out / "checkpoint.pt", out / "log.jsonl"
    restart = resume and (out / "manifest.json").is_file() and not ckpt.is_file()
    if restart:  # stopped before or during its first save: start again in its own folder
        _check_restart(out, model)
        resume = False
        if main:
            start_again(out, (log.name, "samples"))
    if main:
        out = prepare_output_dir(out, allow_existing_run=resume or restart)
    engine.barrier()
    if not resume:
        model.prepare()
    model.amp = engine.amp
    model.to(dev)
    # rank 0 draws exactly what a single-process run draws; other ranks draw their own
    offset = 7919 * engine.rank
    samplers = [IndexStream(pool, model.config.seed * 1009 + i + offset)
                for i, (pool, _) in enumerate(streams)]
    if resume:
        _resume(model, ckpt, samplers, train, engine)
        if main:
            _truncate_log(log, model.step)
    else:
        torch.manual_seed(model.config.seed + offset)
        engine.broadcast_from_main(model.nets.values())
        model.update_meta({**(meta or {}), "train_fingerprint": train.fingerprint(),
                           "data_content": dataset.content_fingerprint(),
                           "train_content": train.content_fingerprint()})
        extra = {k: v for k, v in model.meta.to_dict().items() if k != "data_fingerprint"}
        if main:
            write_json(build_manifest("feraug-gan-run", model.config.model_dump(mode="json"),
                                      model.config.seed, model.meta.data_fingerprint,
                                      model=model.name, classes=list(model.classes),
                                      image_size=model.image_size,
                                      params=model.num_parameters(), device=str(dev),
                                      world_size=engine.world_size, **extra),
                       out / "manifest.json")
    for optimizer in model.optims.values():
        engine.average_gradients(optimizer)
    board = Board(out if tensorboard and main else None,
                  resume_step=model.step + 1 if resume else None)
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
                               "rng": _rng_state()})
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
            elapsed = time.perf_counter() - t0
            means = {k: round(float(v) / n_logged, 5) for k, v in sums.items()}
            ensure_finite_losses(means, f"{out}: steps {step - n_logged + 1}-{step}")
            images_per_s = n_logged * len(x) * engine.world_size / elapsed
            line = {"step": step, "images_per_s": round(images_per_s, 2), **means}
            if main:
                with log.open("a") as fh:
                    fh.write(json.dumps(line) + "\n")
                board.scalars(line, step, prefix="gan")
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:4]})
            sums, n_logged, t0 = {}, 0, time.perf_counter()
        if main and ((sample_every and step % sample_every == 0) or step == steps):
            grid = sample_grid(model, real, sources)
            atomic_write_bytes(png_bytes(grid), out / "samples" / f"step_{step:07d}.png")
            board.image("samples", grid, step)
        if (checkpoint_every and step % checkpoint_every == 0) or step == steps:
            save()
    bar.close()
    board.close()
    if not saved and not resume:  # zero steps to run: still leave a loadable checkpoint
        save()
    engine.barrier()
    last = {}
    if log.is_file() and (lines := log.read_text().splitlines()):
        last = {k: v for k, v in json.loads(lines[-1]).items() if k != "step"}
    return GanRunResult(out, ckpt, model.step, last)
