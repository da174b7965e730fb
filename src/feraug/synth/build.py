"""Building a synthetic training set: generate in batches, filter, write PNGs and a manifest.

The output folder holds ``<emotion>/<emotion>_<seed>_<index>.png`` (``seed`` is the plan seed,
``index`` the candidate number within that emotion, so gaps show dropped candidates) and
``manifest.json``, written last: a folder without it is an interrupted build.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

import feraug
from feraug.data.dataset import FaceDataset
from feraug.data.synthetic import FORMAT, MANIFEST, split_fingerprint
from feraug.errors import ConfigError, DataError, FeraugError
from feraug.io import file_sha256, png_bytes, write_json
from feraug.progress import progress_bar
from feraug.synth.filters import MemorisationGuard, QualityFilter, edit_size
from feraug.synth.plan import (
    SampleGenerator,
    SynthPlan,
    resolve_emotions,
    source_emotion,
    target_counts,
)
from feraug.synth.safety import check_generator_split, check_out_dir, prepare_synth_dir
from feraug.synth.sources import TranslatorSources, derive_seed

COUNT_KEYS = ("requested", "generated", "kept", "dropped_quality", "dropped_memorisation",
              "dropped_unchanged", "dropped_duplicate", "surplus")


@dataclass
class EmotionTally:
    """Per-emotion bookkeeping for the manifest."""

    requested: int
    generated: int = 0
    kept: int = 0
    dropped_quality: int = 0
    dropped_memorisation: int = 0
    dropped_unchanged: int = 0
    dropped_duplicate: int = 0
    surplus: int = 0
    exhausted: bool = False
    rounds: int = 0
    nearest_rms: list[float] = field(default_factory=list)
    edit_sizes: list[float] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    digests: set[bytes] = field(default_factory=set)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in COUNT_KEYS}
        d["rounds"] = self.rounds
        d["shortfall"] = self.requested - self.kept
        if self.exhausted:  # a batch of nothing but repeats ended this emotion early
            d["exhausted"] = True
        if self.sources:  # translators: kept images made from this many different real faces
            d["distinct_sources"] = len(self.sources)
        if self.edit_sizes:
            d["edit_size_min"] = round(min(self.edit_sizes), 6)
            d["edit_size_mean"] = round(sum(self.edit_sizes) / len(self.edit_sizes), 6)
        if self.nearest_rms:
            d["nearest_real_rms_min"] = round(min(self.nearest_rms), 6)
            d["nearest_real_rms_mean"] = round(sum(self.nearest_rms) / len(self.nearest_rms), 6)
        return d


def _check_batch(generator: SampleGenerator, images: object, n: int, size: int) -> torch.Tensor:
    ok = (isinstance(images, torch.Tensor) and images.dtype == torch.uint8
          and tuple(images.shape) == (n, 1, size, size))
    if not ok:
        got = (f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor)
               else type(images).__name__)
        raise FeraugError(f"generator {generator.name!r} returned {got}, expected uint8 "
                          f"({n}, 1, {size}, {size})")
    return images.cpu()


@dataclass
class Candidates:
    """One generated batch and, for a translator, its source faces and their positions in
    the real train images (the memorisation guard leaves each sample's own source out)."""

    images: torch.Tensor
    sources: torch.Tensor | None = None
    source_positions: torch.Tensor | None = None


def _validation_faces(real: FaceDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The real validation faces and labels that calibrate a per-emotion tau."""
    if "val" not in real.split_names():
        raise DataError(f"{real.root or real.format}: tau_quantile needs a validation split "
                        "to calibrate on")
    idx = real.indices("val")
    return real.images[idx], real.labels[idx]


def _apply_filters(batch: Candidates, emotion: str, quality: QualityFilter | None,
                   guard: MemorisationGuard | None, min_change: float, tally: EmotionTally,
                   keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None,
                                                torch.Tensor | None, torch.Tensor | None]:
    """Quality filter, then (translators) the edit-size check, then the memorisation guard
    on the survivors of ``keep``; counts the drops in ``tally``. Returns ``(keep mask,
    emotion probabilities, nearest-real RMS, edit sizes)`` (NaN for samples dropped
    earlier)."""
    images = batch.images
    n = images.shape[0]
    probs = rms = sizes = None
    if quality is not None:
        good, probs = quality.keep(images, emotion)
        tally.dropped_quality += int((keep & ~good).sum())
        keep = keep & good
    if batch.sources is not None:
        sizes = edit_size(images, batch.sources)
        if min_change > 0:
            unchanged = keep & (sizes < min_change)
            tally.dropped_unchanged += int(unchanged.sum())
            keep &= ~unchanged
    if guard is not None and keep.any():
        rms = torch.full((n,), math.nan)
        exclude = None if batch.source_positions is None else batch.source_positions[keep]
        far, rms[keep] = guard.keep(images[keep], exclude)
        dropped = keep.clone()
        dropped[keep] = ~far
        tally.dropped_memorisation += int(dropped.sum())
        keep &= ~dropped
    return keep, probs, rms, sizes


def _new_images(images: torch.Tensor, tally: EmotionTally) -> torch.Tensor:
    """Mask of the drafts not identical to an earlier draft of this emotion (kept or
    dropped: the filters are deterministic, so a repeat of a dropped face is dropped again);
    counts the copies in ``tally``."""
    fresh = torch.ones(len(images), dtype=torch.bool)
    for pos in range(len(images)):  # one digest per draft: hashing, not per-pixel Python
        digest = hashlib.blake2b(images[pos].numpy().tobytes(), digest_size=16).digest()
        if digest in tally.digests:
            fresh[pos] = False
        else:
            tally.digests.add(digest)
    tally.dropped_duplicate += int((~fresh).sum())
    return fresh


def _describe_real(real: FaceDataset) -> dict:
    return {
        "root": real.root,
        "format": real.format,
        "classes": list(real.classes),
        "image_size": real.size,
        "num_images": len(real),
        "train_counts": real.class_counts("train"),
        "fingerprint": real.fingerprint(),
        "split_fingerprint": split_fingerprint(real),
    }


@dataclass
class _Build:
    """What every batch of one build needs, and what the batches record for the manifest."""

    generator: SampleGenerator
    real: FaceDataset
    plan: SynthPlan
    out: Path
    quality: QualityFilter | None
    guard: MemorisationGuard | None
    sources: TranslatorSources | None
    train_positions: torch.Tensor  # real image index -> position among the train faces
    batches: list[dict] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)

    @property
    def filtering(self) -> bool:
        return self.quality is not None or self.guard is not None


def build_synthetic_set(
    generator: SampleGenerator,
    real: FaceDataset,
    plan: SynthPlan,
    out_dir: str | Path,
    generator_checkpoint: Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    data_spec: dict | None = None,
) -> dict:
    """Generate, filter and write a synthetic training set; return its manifest.

    Counts come from ``plan`` and the real *train* split; translators start from the real
    train faces of their source emotion only (or of ``plan.sources``, which ``generator``
    keeps after the call). Refuses (FeraugError) an existing non-empty ``out_dir``, one under
    a validation/test split folder, or one inside the real data set.
    When filters leave an emotion short after ``plan.max_attempts`` rounds, the manifest
    says so (``shortfall`` > 0, ``complete`` false) instead of failing. ``data_spec`` (how
    ``real`` was read and split, a :class:`~feraug.data.spec.DataSpec` dump) is recorded in
    the manifest under ``real``.
    """
    out = Path(out_dir)
    if int(generator.image_size) != real.size:
        raise ConfigError(f"generator {generator.name!r} makes {generator.image_size} px faces "
                          f"but the real data set was loaded at {real.size} px; load it at "
                          f"size={generator.image_size}")
    if "train" not in real.split_names():
        raise DataError(f"{real.root or real.format}: data set has no train split")
    if plan.sources is not None:  # the caller's generator keeps these sources afterwards
        generator.use_sources(plan.sources)
    emotions = resolve_emotions(plan, generator, real.classes)
    targets = target_counts(plan, emotions, real.class_counts("train"))
    src_emotion = source_emotion(generator)
    if src_emotion is not None and src_emotion not in real.classes:
        raise ConfigError(f"translator source emotion {src_emotion!r} is not a class of the "
                          f"real data set (classes: {', '.join(real.classes)})")
    check_out_dir(out, real.root or None)  # refuse early, before loading anything
    check_generator_split(generator.meta, real)

    quality = None
    if plan.filter_model:
        quality = QualityFilter(plan.filter_model, plan.tau, device)
        quality.check_emotions(emotions)
        if plan.tau_quantile is not None:
            quality.calibrate(*_validation_faces(real), real.classes, emotions,
                              plan.tau_quantile)
    train_positions = torch.full((len(real.labels),), -1, dtype=torch.long)
    train_positions[real.indices("train")] = torch.arange(len(real.indices("train")))
    guard = (MemorisationGuard(real.images[real.indices("train")], plan.delta, device)
             if plan.delta > 0 else None)
    sources = TranslatorSources(real, src_emotion, plan.seed) if generator.needs_sources else None
    build = _Build(generator, real, plan, prepare_synth_dir(out, real.root or None), quality,
                   guard, sources, train_positions)

    tallies = {e: EmotionTally(requested=targets[e]) for e in emotions}
    bar = progress_bar(total=sum(targets.values()), desc="synthesising", unit="img",
                       enabled=progress, leave=False)
    try:
        for emotion in emotions:
            _fill_emotion(build, emotion, tallies[emotion], bar)
    finally:
        bar.close()
    manifest = _manifest(build, emotions, tallies, generator_checkpoint, src_emotion, data_spec)
    write_json(manifest, build.out / MANIFEST)
    return manifest


def _fill_emotion(build: _Build, emotion: str, tally: EmotionTally, bar) -> None:
    """Generate rounds of candidates of ``emotion`` until its count is met, the rounds run
    out, or a deterministic translator has only repeats left."""
    plan = build.plan
    batch_no = 0
    while tally.kept < tally.requested and tally.rounds < plan.max_attempts:
        tally.rounds += 1
        missing = tally.requested - tally.kept
        round_total = math.ceil(missing * plan.oversample) if build.filtering else missing
        produced = 0
        while produced < round_total and tally.kept < tally.requested:
            n = min(plan.batch_size, round_total - produced)
            kept_now, any_fresh = _one_batch(build, emotion, tally, batch_no, n)
            batch_no += 1
            produced += n
            bar.update(kept_now)
            if not any_fresh:  # only repeats: a deterministic translator is out of
                tally.exhausted = True  # sources, and more rounds would repeat too
                return


def _one_batch(build: _Build, emotion: str, tally: EmotionTally, batch_no: int,
               n: int) -> tuple[int, bool]:
    """Generate, filter and write one batch of ``n`` candidates; returns (images kept,
    whether any candidate was new)."""
    real, plan = build.real, build.plan
    first = tally.generated
    seed = derive_seed(plan.seed, emotion, batch_no)
    picks = build.sources.take_indices(emotion, first, n) if build.sources is not None else None
    src = None if picks is None else real.images[picks]
    src_ids = [None] * n if picks is None else [real.source_ids[p] for p in picks]
    images = _check_batch(build.generator, build.generator.sample(emotion, n, seed, src), n,
                          real.size)
    candidates = Candidates(images, src, None if picks is None else build.train_positions[picks])
    build.batches.append({"emotion": emotion, "batch": batch_no, "seed": seed, "n": n,
                          "first_index": first})
    tally.generated += n
    fresh = _new_images(images, tally) if plan.unique else torch.ones(n, dtype=torch.bool)
    keep, probs, rms, sizes = _apply_filters(candidates, emotion, build.quality, build.guard,
                                             plan.min_change, tally, fresh)
    passing = keep.nonzero().flatten().tolist()
    room = tally.requested - tally.kept
    tally.surplus += max(0, len(passing) - room)
    folder = build.out / emotion  # created with its first image
    if passing and room > 0:
        folder.mkdir(exist_ok=True)
    for pos in passing[:room]:
        index = first + pos
        name = f"{emotion}_{plan.seed}_{index:06d}.png"
        (folder / name).write_bytes(png_bytes(images[pos]))
        record = {"file": f"{emotion}/{name}", "emotion": emotion, "index": index,
                  "seed": seed, "position": pos}
        if src_ids[pos] is not None:
            record["source"] = src_ids[pos]
            tally.sources.add(src_ids[pos])
        if probs is not None:
            record["p_emotion"] = round(float(probs[pos]), 6)
        if rms is not None:
            record["nearest_real_rms"] = round(float(rms[pos]), 6)
            tally.nearest_rms.append(float(rms[pos]))
        if sizes is not None:
            record["edit_size"] = round(float(sizes[pos]), 6)
            tally.edit_sizes.append(float(sizes[pos]))
        build.files.append(record)
    kept_now = min(len(passing), room)
    tally.kept += kept_now
    return kept_now, bool(fresh.any())


def _manifest(build: _Build, emotions: list[str], tallies: dict[str, EmotionTally],
              generator_checkpoint: Path | None, src_emotion: str | None,
              data_spec: dict | None) -> dict:
    """The set's manifest: what made it, how it was filtered, counts and every file."""
    generator, real, plan, quality = build.generator, build.real, build.plan, build.quality
    counts = {e: t.as_dict() for e, t in tallies.items()}
    return {
        "format": FORMAT,
        "feraug_version": feraug.__version__,
        "complete": all(c["shortfall"] == 0 for c in counts.values()),
        "image_size": real.size,
        "emotions": emotions,
        "generator": {
            "name": generator.name,
            "checkpoint": (None if generator_checkpoint is None
                           else str(Path(generator_checkpoint).absolute())),
            "sha256": None if generator_checkpoint is None else file_sha256(generator_checkpoint),
            "classes": list(generator.classes),
            "image_size": int(generator.image_size),
            "needs_sources": bool(generator.needs_sources),
            "source_emotion": src_emotion,
        },
        "filter": None if quality is None else {
            "checkpoint": str(quality.checkpoint),
            "sha256": file_sha256(quality.checkpoint),
            "model_name": quality.loaded.model_name,
            "classes": list(quality.loaded.classes),
            "tau": plan.tau,
            "tau_by_emotion": {e: round(quality.tau_for(e), 6) for e in emotions},
        },
        "plan": plan.model_dump(mode="json"),
        "seeds": {"plan": plan.seed, "batches": build.batches},
        "real": {**_describe_real(real), "data_spec": data_spec},
        "counts": counts,
        "totals": {k: sum(c[k] for c in counts.values()) for k in (*COUNT_KEYS, "shortfall")},
        "files": build.files,
    }
