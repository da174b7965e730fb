"""``feraug gan score``: how recognisable, realistic, novel and diverse a generator's faces are,
measured by an independent judge (see :mod:`feraug.scoring.judge`).

Per emotion ``e`` the generator can make, with ``n`` samples (translators translate real
train faces of their source emotion, cycling through them; a translator without one, a seeded
sample of every other emotion's faces):

Real references ("real test faces" below) come from the test split, or from the validation
split when the score is used to choose between generators.

- **agreement**: share of samples the judge assigns to ``e``, beside the judge's recall on
  real test faces of ``e``; their ratio (1.0: as recognisable as real faces);
- **KID in judge features**: samples vs real test faces of ``e``, beside the floor (up to
  ``n`` real train faces vs real test faces of ``e``) and, for translators, the untouched
  sources vs real ``e``;
- **FID / KID in Inception features** (when a local Inception network is given), same pairs;
- **memorisation**: each sample's distance to its nearest real train face (pixel RMS in [0, 1]
  and judge features), beside the same for real test faces; **diversity**: mean pairwise
  judge-feature distance, beside real test faces of ``e``;
- translators: feature and pixel distance to the sample's own source, and the share of
  near-copies of it (pixel RMS below ``copy_rms``);
- optionally the **reverse test** (:mod:`feraug.scoring.reverse`): a classifier trained on the
  samples, tested on real faces, beside one trained on as many real faces.

Generated faces never enter any split; only train faces (sources, memorisation) and test faces
(references) are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from feraug.data.dataset import FaceDataset
from feraug.errors import ConfigError, DataError
from feraug.gan.base import GeneratorModel, load_generator
from feraug.scoring.distances import fid, kid, mean_pairwise_distance, nearest_distance
from feraug.scoring.inception import InceptionFeatures
from feraug.scoring.judge import Judge, check_independent, load_judge
from feraug.synth.filters import MemorisationGuard
from feraug.synth.sources import source_mask

#: keeps the order of sources drawn from every other emotion apart from other seeded draws
SOURCE_ORDER_OFFSET = 1_000_003

COPY_RMS = 0.02


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _pixel_rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).div(255.0).pow(2).flatten(1).mean(1).sqrt()


def generate(model: GeneratorModel, emotion: str, n: int, seed: int,
             sources: torch.Tensor | None) -> torch.Tensor:
    """``n`` samples of ``emotion`` (translators: from ``sources[i % len]``)."""
    return model.sample(emotion, n, seed, sources if model.needs_sources else None)


def source_faces(model: GeneratorModel, train: FaceDataset, emotion: str, n: int,
                 seed: int) -> torch.Tensor | None:
    """The ``n`` train faces a translator turns into ``emotion`` (None for noise-to-face
    generators): its source emotion's faces in order, repeated when there are fewer; for a
    translator without a source emotion, a seeded sample of every other emotion's faces (the
    pool ``feraug synth`` draws from: a face is never translated into its own emotion)."""
    if not model.needs_sources:
        return None
    pool = source_mask(train.labels, train.classes, model.source_emotion,
                       emotion).nonzero().flatten()
    if model.source_emotion is None:
        gen = torch.Generator().manual_seed(seed + SOURCE_ORDER_OFFSET)
        pool = pool[torch.randperm(len(pool), generator=gen)]
    if len(pool) == 0:
        raise DataError(f"{train.root or train.format}: the train split has no faces for "
                        f"{model.name} to translate into {emotion!r}")
    return train.images[pool[torch.arange(n) % len(pool)]]


def _distances(ref: torch.Tensor, gen: torch.Tensor, floor: torch.Tensor,
               src: torch.Tensor | None, seed: int) -> dict:
    """KID of the generated, floor and source sets, each against one reference set."""
    return {"generated": kid(ref, gen, seed=seed), "floor": kid(ref, floor, seed=seed),
            "source": None if src is None else kid(ref, src, seed=seed)}


@dataclass
class SourceFeatures:
    """The translated sources and their features (computed once for all emotions when the
    translator has a source emotion, else once per emotion)."""

    faces: torch.Tensor | None
    judge: torch.Tensor | None
    inception: torch.Tensor | None


def real_train_sample(train: FaceDataset, k: int, n: int, seed: int) -> torch.Tensor:
    """Up to ``n`` real train faces of class ``k`` (a seeded random subset): the floor's
    reference, sized like the generated set so that FID/KID compare like with like."""
    pool = (train.labels == k).nonzero().flatten()
    gen = torch.Generator().manual_seed(seed + 7 * k)
    return train.images[pool[torch.randperm(len(pool), generator=gen)[:n]]]


def score_emotion(judge: Judge, emotion: str, faces: torch.Tensor, sources: SourceFeatures,
                  train: FaceDataset, test: FaceDataset, guard: MemorisationGuard,
                  f_all_train: torch.Tensor, inception: InceptionFeatures | None, seed: int,
                  copy_rms: float) -> tuple[dict, dict]:
    """Every measure for one emotion; returns (JSON row, tensors for the figures)."""
    k = train.classes.index(emotion)
    j = judge.classes.index(emotion)
    probs = judge.predict(faces)
    agreement = float((probs.argmax(1) == j).float().mean()) if len(faces) else None
    real_test = test.images[test.labels == k]
    real_train = real_train_sample(train, k, len(faces), seed)
    recall = float((judge.predict(real_test).argmax(1) == j).float().mean()) \
        if len(real_test) else None
    f_gen, f_test, f_train = (judge.features(x) for x in (faces, real_test, real_train))
    f_src = sources.judge
    row: dict = {
        "n": len(faces), "real_test": len(real_test), "real_train": len(real_train),
        "agreement": agreement, "judge_recall_real": recall,
        "agreement_ratio": _ratio(agreement, recall),
        "kid_judge": _distances(f_test, f_gen, f_train, f_src, seed),
        "diversity": {"generated": mean_pairwise_distance(f_gen),
                      "real_test": mean_pairwise_distance(f_test)},
    }
    if inception is not None:
        i_gen = inception(faces)
        i_test, i_train = inception.cached(real_test), inception.cached(real_train)
        i_src = sources.inception
        row["kid_inception"] = _distances(i_test, i_gen, i_train, i_src, seed)
        row["fid_inception"] = {"generated": fid(i_test, i_gen), "floor": fid(i_test, i_train),
                                "source": None if i_src is None else fid(i_test, i_src),
                                "note": "biased by set size: compare at equal sizes only"}
    rms, nearest = guard.nearest(faces)
    fdist, _ = nearest_distance(f_gen, f_all_train)
    test_rms, _ = guard.nearest(real_test)
    test_fdist, _ = nearest_distance(f_test, f_all_train)
    row["memorisation"] = {
        "pixel_rms_min": float(rms.min()), "pixel_rms_mean": float(rms.mean()),
        "feature_min": float(fdist.min()), "feature_mean": float(fdist.mean()),
        "real_test_pixel_rms_mean": float(test_rms.mean()) if len(real_test) else None,
        "real_test_feature_mean": float(test_fdist.mean()) if len(real_test) else None}
    if sources.faces is not None:
        src_rms = _pixel_rms(faces, sources.faces)
        row["source_survival"] = {
            "feature_distance_mean": float((f_gen - f_src).norm(dim=1).mean()),
            "pixel_rms_mean": float(src_rms.mean()),
            "near_copy_share": float((src_rms < copy_rms).float().mean()),
            "near_copy_rms": copy_rms,
            "judge_agreement_of_sources": float(
                (judge.predict(sources.faces).argmax(1) == j).float().mean())}
    figures = {"faces": faces, "confidence": probs[:, j], "rms": rms,
               "nearest": train.images[nearest], "sources": sources.faces}
    return row, figures


def score_generator(generator: str | Path, dataset: FaceDataset, judge: str | Path,
                    n: int = 500, seed: int = 0, inception: InceptionFeatures | None = None,
                    out: str | Path | None = None, copy_rms: float = COPY_RMS,
                    device: str = "cpu", split: str = "test",
                    data_spec: dict | None = None, reverse: dict | None = None,
                    sources_from: str | None = None,
                    filter_models: Sequence[str | Path] = ()) -> dict:
    """Score ``generator`` (a checkpoint) on ``dataset`` with the classifier ``judge``.

    Real references (agreement's recall, KID/FID, diversity) come from ``split``: ``val`` when
    the score chooses between generators or settings, ``test`` for the final report only.
    Returns the JSON-ready result; with ``out`` (new or empty folder) also writes
    ``score.json``, ``best_worst.png``, ``nearest_real.png`` and, for translators,
    ``first_samples.png`` there. ``data_spec`` (how ``dataset`` was read and split, a
    :class:`~feraug.data.spec.DataSpec` dump) is recorded with the result. ``reverse``
    (keyword arguments of :func:`~feraug.scoring.reverse.reverse_score`: ``model``,
    ``epochs``) adds the reverse test on the same samples, trained in ``out/reverse``.
    ``sources_from`` (translators trained between every pair of emotions only) translates
    faces of that emotion, or with ``"any"`` of every emotion but the one made, instead of
    the source emotion the generator was trained with. ``filter_models``: synth quality
    filters used on this generator's faces; a judge that is one of them is refused.
    """
    from feraug.io import check_output_dir, prepare_output_dir, write_json
    from feraug.scoring.figures import save_best_worst, save_first_pairs, save_nearest_pairs

    if out is not None:  # refused now, not after minutes of scoring
        check_output_dir(Path(out))
    model = load_generator(generator, device)
    if sources_from is not None:
        model.use_sources(sources_from)
    the_judge = load_judge(judge, dataset, device)
    check_independent(the_judge, model.meta, generator, filter_models)
    if split not in ("val", "test"):
        raise ConfigError(f"split must be val or test, not {split!r}")
    train, test = dataset.subset("train"), dataset.subset(split)
    if len(test) == 0:
        raise ConfigError(f"{dataset.root}: no {split} faces to compare with")
    guard = MemorisationGuard(train.images, 0.0, device)
    f_all_train = the_judge.features(train.images)
    emotions, figures = {}, {}
    src = None
    for emotion in model.emotions():
        # a source emotion: one set serves every emotion; else each leaves out its own faces
        if src is None or model.source_emotion is None:
            used = source_faces(model, train, emotion, n, seed)
            src = SourceFeatures(used, None if used is None else the_judge.features(used),
                                 None if used is None or inception is None
                                 else inception.cached(used))
        faces = generate(model, emotion, n, seed, src.faces)
        emotions[emotion], figures[emotion] = score_emotion(
            the_judge, emotion, faces, src, train, test, guard, f_all_train, inception, seed,
            copy_rms)
    ratios = [r["agreement_ratio"] for e, r in emotions.items()
              if r["agreement_ratio"] is not None and e != model.source_emotion]
    result = {
        "generator": str(generator), "generator_name": model.name, "step": model.step,
        "judge": {"path": str(the_judge.path), "sha256": the_judge.sha256,
                  "model": the_judge.loaded.model_name, "decisions": the_judge.balance},
        "guide_sha256": next(iter(model.meta.guide_hashes()), None),
        "guide_sha256s": list(model.meta.guide_hashes()),
        "data": str(dataset.root), "data_spec": data_spec,
        "train_fingerprint": train.fingerprint(),
        "n": n, "seed": seed, "reference_split": split,
        "sources": None if not model.needs_sources else model.source_emotion or "any",
        "inception": None if inception is None else str(inception.path),
        "mean_agreement_ratio": sum(ratios) / len(ratios) if ratios else None,
        "emotions": emotions,
    }
    if out is not None:
        out = prepare_output_dir(Path(out))
    if reverse is not None:
        from feraug.scoring.reverse import reverse_score

        result["reverse"] = reverse_score(
            train, dataset.subset("val"), test,
            {e: figures[e]["faces"] for e in model.emotions()}, n, seed, device=device,
            out=None if out is None else out / "reverse",
            skip=frozenset({model.source_emotion} - {None}), **reverse)
    if out is not None:
        result["files"] = {"best_worst": str(save_best_worst(figures, out / "best_worst.png")),
                           "nearest_real": str(save_nearest_pairs(figures,
                                                                  out / "nearest_real.png"))}
        first = save_first_pairs(figures, out / "first_samples.png")
        if first is not None:
            result["files"]["first_samples"] = str(first)
        write_json(result, out / "score.json")
    return result
