"""``feraug experiment pool``: cross-validation folds (experiment folders written by hand, no
training) pooled into one answer: scores from the summed confusion matrices, runs some fold
lacks left out and reported, folders of other experiments or repeated folds refused, the
missing-fold warning, the output folder rule, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feraug.errors import ConfigError, FeraugError
from feraug.experiment.config import parse_experiment_config
from feraug.experiment.pool_report import _generator_scores, arm_confusion
from feraug.experiment.pooling import pool_folds, write_pooled
from feraug.reporting.stats import ci_summary

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
ARMS = ("real", "cw", "gan")
SEEDS = (0, 1, 2)
#: Mean validation accuracy per arm: cw is the best arm without synthetic faces.
VAL = {"real": 0.50, "cw": 0.60, "gan": 0.70}


def config(out: Path, fold: int, folds: int = 3, **base: object) -> dict:
    """A parsed tiny experiment config (as a manifest stores it); folds differ in fold/out."""
    values = {"title": "tiny pooled experiment (fold 0)",
              "data": {"path": "procedural", "n_identities": 10, "folds": folds, "fold": fold},
              "base": {"model": "zhu-cnn", "epochs": 1, "max_steps": 2, "device": "cpu",
                       **base},
              "seeds": list(SEEDS),
              "arms": [{"name": "real"}, {"name": "cw", "class_weighted_loss": True},
                       {"name": "gan", "synthetic": ["synthetic-set"]}],
              "out": str(out), "tsne_points": 0}
    return parse_experiment_config(values).model_dump()


def matrix(fold: int, arm: str, seed: int) -> np.ndarray:
    """A small confusion matrix of counts, different for every fold, arm and seed."""
    rng = np.random.default_rng(100 * fold + 10 * ARMS.index(arm) + seed)
    cm = rng.integers(0, 3, size=(len(CLASSES), len(CLASSES)))
    cm[np.diag_indices(len(CLASSES))] += rng.integers(1, 6, size=len(CLASSES))
    cm[1] = 0  # no true disgust face in this test split: recall undefined, F1 counts as 0
    cm[1, 1] = fold  # ... except in the later folds
    return cm


def hand_scores(cm: np.ndarray) -> dict:
    """Accuracy, macro-F1 (zero for a class with neither true nor predicted faces) and
    recall from a confusion matrix, written out without scikit-learn."""
    tp, rows, cols = np.diag(cm), cm.sum(1), cm.sum(0)
    f1 = [2 * t / (r + c) if r + c else 0.0 for t, r, c in zip(tp, rows, cols, strict=True)]
    return {"accuracy": tp.sum() / cm.sum(), "macro_f1": float(np.mean(f1)),
            "recall": [t / r if r else 0.0 for t, r in zip(tp, rows, strict=True)]}


def write_fold(root: Path, fold: int, folds: int = 3, skip: tuple = (), **base: object) -> Path:
    """An experiment folder of one fold: manifest plus each run's test record (runs in
    ``skip`` are started, not finished)."""
    out = root / f"fold{fold}"
    out.mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps(
        {"kind": "experiment", "config": config(out, fold, folds, **base),
         "data_fingerprint": f"fingerprint-{fold}", "seeds": list(SEEDS), "arms": list(ARMS),
         "data_summary": {"splits": {"val": {"total": 30 + fold}}},
         "baseline": "real"}))
    for arm in ARMS:
        for seed in SEEDS:
            run = out / arm / f"seed{seed}"
            run.mkdir(parents=True)
            (run / "manifest.json").write_text("{}")
            if (arm, seed) in skip:
                continue
            cm = matrix(fold, arm, seed)
            scores = hand_scores(cm)
            (run / "test").mkdir()
            (run / "test" / "metrics.json").write_text(json.dumps(
                {"arm": arm, "seed": seed, "run_dir": f"{arm}/seed{seed}",
                 "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                 "confusion_matrix": cm.tolist(), "classes": CLASSES,
                 "num_images": int(cm.sum()),
                 "best_val_accuracy": VAL[arm] + 0.01 * (fold - seed)}))
    return out


@pytest.fixture
def folds(tmp_path: Path) -> list[Path]:
    return [write_fold(tmp_path, k) for k in range(3)]


def test_pooled_scores_come_from_the_summed_confusion_matrices(folds: list[Path]) -> None:
    res = pool_folds(folds)
    assert [f["fold"] for f in res["folds"]] == [0, 1, 2]
    assert res["warnings"] == [] and res["left_out"] == [] and res["missing_runs"] == []
    by_run = {(r["arm"], r["seed"]): r for r in res["runs"]}
    for arm in ARMS:
        for seed in SEEDS:
            summed = sum(matrix(k, arm, seed) for k in range(3))
            want = hand_scores(summed)
            run = by_run[(arm, seed)]
            assert run["accuracy"] == pytest.approx(want["accuracy"])
            assert run["macro_f1"] == pytest.approx(want["macro_f1"])
            assert run["num_images"] == summed.sum()
            assert run["confusion_matrix"] == summed.tolist()
            assert [run["recall"][c] for c in CLASSES] == pytest.approx(want["recall"])
            assert run["best_val_accuracy"] == pytest.approx(VAL[arm] + 0.01 * (1 - seed))
            # pooling is not the mean of the folds' accuracies (the folds differ in size)
            per_fold = np.mean([hand_scores(matrix(k, arm, seed))["accuracy"]
                                for k in range(3)])
            assert run["accuracy"] != pytest.approx(per_fold, abs=1e-9)
    acc = {(a, s): r["accuracy"] for (a, s), r in by_run.items()}
    real = res["arms"]["real"]
    assert real["accuracy"] == ci_summary([acc[("real", s)] for s in SEEDS])
    delta = res["arms"]["cw"]["delta_vs_baseline"]["accuracy"]
    assert delta["mean"] == pytest.approx(np.mean([acc[("cw", s)] - acc[("real", s)]
                                                   for s in SEEDS]))
    # the GAN arm is also compared with the best non-GAN arm, chosen on validation
    assert res["best_non_gan"]["arm"] == "cw"
    gan = res["arms"]["gan"]["delta_vs_best_non_gan"]["accuracy"]
    assert gan["mean"] == pytest.approx(np.mean([acc[("gan", s)] - acc[("cw", s)]
                                                 for s in SEEDS]))
    assert len(res["per_fold"]) == len(ARMS) * len(SEEDS) * 3


def test_an_arms_figure_sums_its_matrices_over_every_fold_and_seed(folds: list[Path]) -> None:
    res = pool_folds(folds)
    seeds, summed = arm_confusion(res, "cw")
    assert seeds == 3
    np.testing.assert_array_equal(summed, sum(matrix(f, "cw", s) for f in range(3) for s in SEEDS))
    assert arm_confusion(res, "absent")[0] == 0


def test_each_folds_generator_score_is_listed_and_a_missing_ratio_is_a_dash(
        tmp_path: Path) -> None:
    results = {"config": {"generators": [{"name": "g"}]}, "classes": ["angry", "fear"],
               "folds": [{"folder": str(tmp_path / f"fold{k}"), "fold": k} for k in (0, 1)]}
    assert _generator_scores(results) is None  # no fold scored its generator
    score = tmp_path / "fold1" / "scores" / "g" / "score.json"
    score.parent.mkdir(parents=True)
    score.write_text(json.dumps({"mean_agreement_ratio": 0.8, "emotions": {
        "angry": {"agreement_ratio": 0.8}, "fear": {"agreement_ratio": None}}}))
    table = _generator_scores(results)
    assert table is not None and "| `g` | 1 | 0.800 | 0.800 | — |" in table
    assert "| `g` | 0 |" not in table


def test_a_run_some_fold_has_not_finished_is_left_out_and_reported(tmp_path: Path) -> None:
    folders = [write_fold(tmp_path, k, skip=(("cw", 2),) if k == 1 else ())
               for k in range(3)]
    res = pool_folds(folders)
    assert res["left_out"] == [{"arm": "cw", "seed": 2, "unfinished_folds": [1]}]
    assert res["missing_runs"] == [{"arm": "cw", "seed": 2}]
    assert res["arms"]["cw"]["seeds"] == [0, 1]
    assert res["arms"]["cw"]["delta_vs_baseline"]["accuracy"]["seeds"] == [0, 1]
    assert any("cw seed 2 (fold 1)" in w for w in res["warnings"])


def test_folders_of_another_experiment_or_a_repeated_fold_are_refused(tmp_path: Path,
                                                                     folds: list[Path]) -> None:
    other = write_fold(tmp_path / "other", 1, epochs=3)
    with pytest.raises(ConfigError, match=rf"{other}: not a fold of the same.*base\.epochs"):
        pool_folds([folds[0], other])
    with pytest.raises(ConfigError, match=rf"{folds[1]}: fold 1 again"):
        pool_folds([folds[0], folds[1], folds[1]])
    again = write_fold(tmp_path / "again", 1)
    with pytest.raises(ConfigError, match=rf"{again}: fold 1 again"):
        pool_folds([folds[1], again])
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(FeraugError, match=rf"{plain}: not a feraug experiment folder"):
        pool_folds([folds[0], plain])
    # data with their own splits ignore data.fold: two "folds" with one test split
    same = write_fold(tmp_path / "same", 2)
    manifest = json.loads((same / "manifest.json").read_text())
    manifest["data_fingerprint"] = "fingerprint-0"
    (same / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=rf"{same}: the same data and split"):
        pool_folds([folds[0], same])
    # other classes in one run record
    record = folds[2] / "real" / "seed0" / "test" / "metrics.json"
    values = json.loads(record.read_text())
    values["classes"] = list(reversed(CLASSES))
    record.write_text(json.dumps(values))
    with pytest.raises(FeraugError, match=rf"{record}: classes"):
        pool_folds(folds)


def test_missing_folds_are_a_warning(tmp_path: Path) -> None:
    res = pool_folds([write_fold(tmp_path, k) for k in (0, 2)])
    assert res["missing_folds"] == [1]
    assert res["warnings"] == ["fold 1 of 3 missing: not every subject is tested"]
    res = pool_folds([write_fold(tmp_path / "five", k, folds=5) for k in (0, 1, 2)])
    assert res["warnings"] == ["folds 3, 4 of 5 missing: not every subject is tested"]


def test_writes_the_pooled_folder_and_never_a_foreign_one(tmp_path: Path,
                                                          folds: list[Path]) -> None:
    res = pool_folds(folds)
    out = tmp_path / "pooled"
    summary = write_pooled(res, out)
    assert summary["runs_done"] == 9 and summary["folds"] == [0, 1, 2]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "experiment-pool"
    assert [i["fold"] for i in manifest["inputs"]] == [0, 1, 2]
    assert json.loads((out / "results.json").read_text())["folds_total"] == 3
    assert (out / "results.csv").read_text().startswith("arm,n_seeds,")
    report = (out / "report.md").read_text()
    assert report.startswith("# tiny pooled experiment (pooled over folds 0, 1, 2 of 3)")
    assert "Δ accuracy vs cw" in report and "comparisons with an interval are made here" in report
    assert str(folds[2]) in report and "| happy |" in report
    # the fewest validation faces of any fold are named: the choice of cw rests on them
    assert res["val_faces"] == 30 and "as few as 30 faces per run" in report
    assert "figures/confusion_gan.png" in report and (out / "figures" / "metrics.png").is_file()
    assert (out / "report.html").read_text().count("data:image/png;base64") == 1 + len(ARMS)
    write_pooled(res, out)  # a pooled folder written before is rewritten

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FeraugError, match="refusing to overwrite"):
        write_pooled(res, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    experiment = write_fold(tmp_path / "elsewhere", 0)  # an experiment that is not an input
    with pytest.raises(FeraugError, match="is not a pooled folder"):
        write_pooled(res, experiment)
    for inside in (folds[0], folds[0] / "pooled"):  # a fold, or a folder within one
        with pytest.raises(FeraugError, match="refusing to write inside the experiment"):
            write_pooled(res, inside)
    assert not (folds[0] / "pooled").exists()


def test_command_line(run_cli, tmp_path: Path, folds: list[Path]) -> None:
    out = tmp_path / "pooled"
    res = run_cli("experiment", "pool", *folds, "--out", out)
    assert res.code == 0, res.stderr
    assert "pooled folds 0, 1, 2 of 3" in res.stdout
    assert "9/9 runs finished" in res.stdout and "cw" in res.stdout and "Δacc" in res.stdout
    res = run_cli("experiment", "pool", *folds[:2], "--out", out, "--json")
    assert res.code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["folds"] == [0, 1] and summary["warnings"] == [
        "fold 2 of 3 missing: not every subject is tested"]
    res = run_cli("experiment", "pool", folds[0], folds[0], "--out", tmp_path / "x")
    assert res.code == 2 and res.stderr.count("\n") == 1 and "fold 0 again" in res.stderr


def test_pooled_folds_are_compared_resampling_every_subject_once(tmp_path: Path) -> None:
    """Pooled folds concatenate their test faces: two folds of one person each give two
    subjects; the difference and its subject interval are hand-checkable."""
    from feraug.classifier.evaluate import PREDICTIONS, save_predictions
    from feraug.experiment.by_subject import subject_comparisons, subject_table

    y = np.array([0, 1])
    preds = {("real", 0): y, ("real", 1): 1 - y, ("gan", 0): y, ("gan", 1): y}
    for (arm, fold), pred in preds.items():
        folder = tmp_path / f"fold{fold}" / arm
        folder.mkdir(parents=True)
        save_predictions(folder / PREDICTIONS, y, pred, [f"person{fold}"] * 2)
    results = {"baseline": "real", "classes": ["a", "b"], "best_non_gan": {"arm": "real"},
               "arms": {"real": {}, "gan": {"delta_vs_baseline": {"accuracy": {"seeds": [0]}},
                                          "delta_vs_best_non_gan": {}}}}

    def test_dirs(arm: str, seed: int) -> list[Path]:
        return [tmp_path / f"fold{k}" / arm for k in (0, 1)]

    found = subject_comparisons(results, test_dirs)
    (row,) = found["comparisons"]
    assert (row["arm"], row["reference"], row["n_units"]) == ("gan", "real", 2)
    assert row["accuracy"]["mean"] == pytest.approx(0.5)
    assert row["accuracy"]["low"] is None  # two people: too few for an interval
    assert "too coarse" in subject_table({"by_subject": found})
    (tmp_path / "fold1" / "gan" / PREDICTIONS).unlink()  # a run made before predictions
    missing = subject_comparisons(results, test_dirs)
    assert missing["comparisons"] == [] and "Not made" in subject_table({"by_subject": missing})


def test_data_without_subjects_get_no_subject_section_even_beside_old_runs(
        tmp_path: Path) -> None:
    """FER2013 names no subjects: an old run without predictions must not make the report
    ask for predictions it could not use."""
    from feraug.classifier.evaluate import PREDICTIONS, save_predictions
    from feraug.experiment.by_subject import subject_comparisons, subject_table

    y = np.array([0, 1, 1])
    for arm in ("real", "balanced"):
        (tmp_path / arm).mkdir()
    save_predictions(tmp_path / "balanced" / PREDICTIONS, y, y, None)  # "real": no file
    results = {"baseline": "real", "classes": ["a", "b"], "best_non_gan": {"arm": "real"},
               "arms": {"real": {},
                        "balanced": {"delta_vs_baseline": {"accuracy": {"seeds": [0]}}}}}
    found = subject_comparisons(results, lambda arm, seed: [tmp_path / arm])
    assert found is None and subject_table({"by_subject": found}) is None


def test_the_caller_can_say_the_data_name_no_subjects(tmp_path: Path) -> None:
    """With no run's predictions to look at, the data summary decides: no note asking for
    predictions on FER2013."""
    from feraug.experiment.by_subject import subject_comparisons

    results = {"baseline": "real", "classes": ["a", "b"], "best_non_gan": {"arm": "real"},
               "arms": {"real": {}, "gan": {"delta_vs_baseline": {"accuracy": {"seeds": [0]}}}}}
    no_files = lambda arm, seed: [tmp_path / arm]  # noqa: E731
    assert subject_comparisons(results, no_files, names_subjects=False) is None
    assert subject_comparisons(results, no_files)["note"].startswith("some runs kept no")
