"""Bootstrap intervals over test images: one model (evaluate) and two models paired (compare)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from feraug.reporting.stats import (
    _confusions,
    bootstrap_ci,
    paired_bootstrap,
    scores_from_confusions,
)


def labels_and_guesses(n: int, right: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """7-class labels and predictions that are right about ``right`` of the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    return y, np.where(rng.random(n) < right, y, rng.integers(0, 7, n))


def test_vectorised_scores_match_scikit_learn() -> None:
    y, p = labels_and_guesses(300, 0.5)
    y[y == 6] = 5  # class 6 never true: its F1 is 0 when never predicted either (zero_division)
    idx = np.random.default_rng(0).integers(0, len(y), (6, len(y)))
    got = scores_from_confusions(_confusions(y, p, 7, idx))
    for b, rows in enumerate(idx):
        want = f1_score(y[rows], p[rows], labels=range(7), average="macro", zero_division=0)
        assert got["macro_f1"][b] == pytest.approx(want)
        assert got["accuracy"][b] == pytest.approx((y[rows] == p[rows]).mean())


def test_interval_contains_the_estimate_and_shrinks_with_more_images() -> None:
    small, large = (bootstrap_ci(*labels_and_guesses(n, 0.6), 7) for n in (200, 5000))
    y, p = labels_and_guesses(5000, 0.6)
    acc = (y == p).mean()
    assert large["accuracy"][0] < acc < large["accuracy"][1]
    width = {name: ci["accuracy"][1] - ci["accuracy"][0] for name, ci in
             (("small", small), ("large", large))}
    assert width["large"] < width["small"] / 3
    assert bootstrap_ci(y, p, 7) == large  # seeded: same interval every time


def test_paired_bootstrap_separates_better_from_identical() -> None:
    y, weak = labels_and_guesses(2000, 0.5)
    strong = np.where(np.random.default_rng(5).random(len(y)) < 0.5, y, weak)
    same = paired_bootstrap(y, weak, weak, 7)
    assert same["accuracy"]["ci"] == [0.0, 0.0] and same["accuracy"]["p_b_at_least_a"] == 1.0
    better = paired_bootstrap(y, strong, weak, 7)
    assert better["accuracy"]["difference"] > 0 and better["accuracy"]["ci"][0] > 0
    assert better["macro_f1"]["ci"][0] > 0 and better["accuracy"]["p_b_at_least_a"] == 0.0
    worse = paired_bootstrap(y, weak, strong, 7)
    assert worse["accuracy"]["ci"][1] < 0


def test_evaluate_and_compare_cli_report_intervals(ckpt: Path, fer_slice: Path,
                                                   run_cli) -> None:
    ev = run_cli("evaluate", str(ckpt), str(fer_slice), "--json")
    assert ev.code == 0, ev.stderr
    metrics = json.loads(ev.stdout)
    lo, hi = metrics["ci95"]["accuracy"]
    assert lo <= metrics["accuracy"] <= hi and metrics["ci95"]["resamples"] > 100
    text = run_cli("evaluate", str(ckpt), str(fer_slice))
    assert "95% bootstrap" in text.stdout
    cmp = run_cli("compare", str(ckpt), str(ckpt), str(fer_slice), "--json")
    assert cmp.code == 0, cmp.stderr
    result = json.loads(cmp.stdout)
    assert result["accuracy"]["difference"] == 0.0 and result["num_images"] > 0
    missing = run_cli("compare", str(ckpt), str(fer_slice / "nope.pt"), str(fer_slice))
    assert missing.code == 2 and missing.stderr.count("error:") == 1


def test_prediction_batches_do_not_change_results_and_refuse_zero() -> None:
    import torch

    from feraug.classifier.infer import predict_proba
    from feraug.models import build_classifier

    torch.manual_seed(0)
    model = build_classifier("zhu-cnn", 7, 44).eval()
    faces = torch.randint(0, 256, (37, 1, 48, 48), dtype=torch.uint8)
    for tta in ("none", "flip", "tencrop"):
        small = predict_proba(model, faces, 44, tta, batch_size=5)
        assert torch.allclose(predict_proba(model, faces, 44, tta), small, atol=1e-5)
    with pytest.raises(ValueError, match="at least 1"):
        predict_proba(model, faces, 44, "none", batch_size=0)


def test_subject_bootstrap_is_wider_when_subjects_repeat_one_outcome() -> None:
    # 40 subjects x 25 images; each subject is either always right or always wrong, so the
    # images are not independent and resampling images overstates how sure we are.
    rng = np.random.default_rng(0)
    subjects = np.repeat(np.arange(40), 25)
    y = rng.integers(0, 7, len(subjects))
    right = np.repeat(rng.random(40) < 0.6, 25)
    p = np.where(right, y, (y + 1) % 7)
    by_image = bootstrap_ci(y, p, 7)
    by_subject = bootstrap_ci(y, p, 7, groups=[f"S{s:03d}" for s in subjects])
    width = {name: ci["accuracy"][1] - ci["accuracy"][0]
             for name, ci in (("image", by_image), ("subject", by_subject))}
    assert by_subject["unit"] == "group" and by_image["unit"] == "image"
    assert width["subject"] > 3 * width["image"]
    one_per_group = bootstrap_ci(y, p, 7, groups=list(range(len(y))))
    assert one_per_group["accuracy"] == pytest.approx(by_image["accuracy"], abs=0.01)
    paired = paired_bootstrap(y, p, p, 7, groups=subjects.tolist())
    assert paired["accuracy"]["ci"] == [0.0, 0.0] and paired["unit"] == "group"


def test_seed_averaged_subject_bootstrap_by_hand() -> None:
    """Two subjects of two faces; A is right everywhere, B wrong on subject "s2": the mean
    difference is 0.5 and a resample of subjects gives 0 (s1 twice), 0.5 or 1 (s2 twice)."""
    from feraug.reporting.stats import paired_seed_bootstrap

    y = np.array([0, 1, 0, 1])
    subjects = ["s1", "s1", "s2", "s2"]
    right, wrong_on_s2 = y.copy(), np.array([0, 1, 1, 0])
    out = paired_seed_bootstrap(y, [right, right], [wrong_on_s2, wrong_on_s2], 2,
                                groups=subjects, resamples=2000)
    assert out["accuracy"]["mean"] == pytest.approx(0.5)
    assert (out["accuracy"]["low"], out["accuracy"]["high"]) == (0.0, 1.0)
    assert out["unit"] == "subject" and out["n_units"] == 2 and out["n_seeds"] == 2
    # seed 0 favours A on s2 and seed 1 favours B as much: the mean is 0, but a draw of s2
    # twice and of one seed twice gives +-1, so the interval covers how the seeds fell
    out = paired_seed_bootstrap(y, [right, wrong_on_s2], [wrong_on_s2, right], 2,
                                groups=subjects, resamples=2000)
    assert out["accuracy"]["mean"] == 0.0
    assert (out["accuracy"]["low"], out["accuracy"]["high"]) == (-1.0, 1.0)
