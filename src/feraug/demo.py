"""``feraug demo``: the whole pipeline on embedded procedural faces, no download needed.

The demo is a bundled experiment config (``feraug/assets/demo.yaml``) run by the same runner
as every protocol (:func:`feraug.experiment.runner.run_experiment`): a guide classifier, a
guided editing CycleGAN neutral -> disgust, a synthetic set filling disgust up, an
independent judge scoring the generator, and zhu-cnn trained on real faces and on real +
synthetic faces over two seeds, reported as ``report.md``/``report.html``. ``quick`` shrinks
every stage to seconds (tests); ``gan=False`` keeps only the real arm. The data are also
saved as FER2013-style image folders (``OUT/data``) so the normal commands can be tried next.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from feraug.io import prepare_output_dir, write_json

if TYPE_CHECKING:  # the experiment modules import torch; `import feraug.demo` stays light
    from feraug.experiment.config import ExperimentConfig

#: Quick mode (tests, smoke checks): tiny data, two training steps per classifier and a few
#: generator steps; every stage still runs, and the scores are near chance by design.
QUICK: dict[str, Any] = {
    "data": {"n_per_class": {"angry": 12, "disgust": 10, "fear": 12, "happy": 16, "sad": 12,
                             "surprise": 12, "neutral": 14}, "n_identities": 10},
    "base": {"epochs": 1, "max_steps": 2, "batch_size": 32, "device": "cpu"},
    "generator": {"steps": 3, "batch_size": 2, "ngf": 4, "n_blocks": 1, "ndf": 4,
                  "pool_size": 4},
    # an untrained editor makes near-copies of its sources; keep them in quick mode
    "plan": {"delta": 0.0, "min_change": 0.0},
    "judge": {"n": 16, "reverse_epochs": 1},
    "tsne_points": 60,
}


def demo_values(out: str | Path, quick: bool = False, seed: int = 0,
                gan: bool = True) -> dict[str, Any]:
    """The demo's experiment config as a mapping (the bundled file with the run's options)."""
    text = (resources.files("feraug") / "assets" / "demo.yaml").read_text(encoding="utf-8")
    values = yaml.safe_load(text)
    values["out"] = str(out)
    values["data"]["seed"] = seed
    values["seeds"] = [seed, seed + 1]
    if quick:
        q = copy.deepcopy(QUICK)
        values["data"].update(q["data"])
        values["base"].update(q["base"])
        for gen in values["generators"]:
            gen["config"].update(q["generator"])
            gen["device"] = "cpu"
        for syn in values["synthetic"]:
            syn["plan"].update(q["plan"])
        values["judge"].update(q["judge"])
        values["tsne_points"] = q["tsne_points"]
    if not gan:
        for key in ("classifiers", "generators", "synthetic", "judge"):
            values.pop(key, None)
        values["arms"] = [a for a in values["arms"] if not a.get("synthetic")]
    return values


def demo_config(out: str | Path, quick: bool = False, seed: int = 0,
                gan: bool = True) -> ExperimentConfig:
    """The demo's validated experiment config."""
    from feraug.experiment.config import parse_experiment_config

    return parse_experiment_config(demo_values(out, quick, seed, gan), source="feraug demo")


def _gan_summary(cfg: ExperimentConfig) -> dict | None:
    """The generator, its synthetic set and the judge's view of its faces."""
    from feraug.experiment.judging import read_scores
    from feraug.experiment.stages import generator_checkpoint

    if not cfg.generators:
        return None
    gen, syn = cfg.generators[0], cfg.synthetic[0]
    manifest = json.loads((Path(cfg.synthetic_dir(syn.name)) / "manifest.json").read_text())
    target = gen.config["target"]
    score = read_scores(cfg).get(gen.name, {})
    judged = (score.get("emotions") or {}).get(target, {})
    return {"name": gen.name, "model": gen.model, "source": gen.config["source"],
            "checkpoint": str(generator_checkpoint(cfg, gen.name)),
            "target": target, "steps": gen.config["steps"],
            "synthetic_kept": manifest["totals"]["kept"],
            "judge_agreement": judged.get("agreement"),
            "judge_recall_real": judged.get("judge_recall_real"),
            "agreement_ratio": judged.get("agreement_ratio"),
            "reverse": ((score.get("reverse") or {}).get("emotions") or {}).get(target)}


def run_demo(out_dir: str | Path, quick: bool = False, seed: int = 0, gan: bool = True,
             log: Callable[[str], None] | None = None) -> dict:
    """Run the demo into ``out_dir`` (new or empty) and return a JSON-ready summary: the
    experiment runner's (report, per-arm accuracy and macro-F1 with intervals), plus per-arm
    mean test recall per class (``test_recall``), one row per arm (``results``: mean test
    accuracy, macro-F1 and recall over seeds), the generator step (``gan``: checkpoint,
    synthetic faces kept, the judge's agreement; None with ``gan=False``), and wall-clock and
    CPU seconds."""
    from feraug.data.procedural import save_image_folder
    from feraug.experiment.data import load_real_data
    from feraug.experiment.runner import run_experiment

    out_dir = prepare_output_dir(Path(out_dir))
    cfg = demo_config(out_dir, quick, seed, gan)
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run_experiment(cfg, log=log or (lambda _: None))
    real = load_real_data(cfg.data)
    data_dir = save_image_folder(real, out_dir / "data")
    results = json.loads((out_dir / "results.json").read_text())
    recall = {arm: {c: r["mean"] for c, r in e["recall"].items()}
              for arm, e in results["arms"].items()}
    summary.update(
        quick=quick, seed=seed, data_fingerprint=real.fingerprint(), data=str(data_dir),
        test_recall=recall,
        results=[{"name": arm, "test_accuracy": e["accuracy"]["mean"],
                  "test_macro_f1": e["macro_f1"]["mean"], "test_recall": recall[arm],
                  "seeds": e["seeds"]} for arm, e in results["arms"].items()],
        gan=_gan_summary(cfg), wall_seconds=round(time.perf_counter() - wall, 1),
        cpu_seconds=round(time.process_time() - cpu, 1))
    write_json(summary, out_dir / "summary.json")
    return summary

