"""What ``feraug predict`` gets right on a labelled face set, per detector, side by side, as JSON.

    python benchmarks/predict_accuracy.py --data ../shared/data/jaffe
    python benchmarks/predict_accuracy.py --data ../shared/data/sfew2/Val --detectors none
    python benchmarks/predict_accuracy.py --data DIR --detectors auto --margins 0.1 0 0.2
    python benchmarks/predict_accuracy.py --data DIR --detectors auto --aligners none eyes
    python benchmarks/predict_accuracy.py --data DIR --tilt 30 --aligners none eyes haar

Labels come from JAFFE file names (``KA.AN1.39.tiff``) or from class folder names
(``Val/Angry/...``). Each image is one face: the detector's largest box is the prediction,
and an image where the detector finds no face counts as wrong (``no_face`` says how many).
``none`` classifies each whole image (``--no-detect``, for tight crops such as SFEW's).
``--tilt D`` rotates every image about its centre by D degrees, anticlockwise and clockwise
in turn (file order), repeating the border: tilted heads, for ``--aligners``, which compares
faces levelled by their eyes (``feraug predict --align``) with faces cut as they are.
Each extra margin and aligner also gets ``paired_vs_first``: its accuracy and macro-F1 minus
the first setting's on the same faces, with intervals over the same resamples.
The model is the bundled default unless ``--model`` names a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import torch
from sklearn.metrics import f1_score, recall_score

from feraug.data.listing import image_files
from feraug.data.readers.jaffe import FILE_PATTERN, parse_name
from feraug.emotions import canonical
from feraug.predict import predict
from feraug.predict.crop import MARGIN
from feraug.predict.model import resolve_model
from feraug.reporting.stats import bootstrap_ci, paired_bootstrap


def labelled_files(folder: Path) -> tuple[list[Path], list[str], list[str]]:
    """Image files under ``folder``, their emotions and the unit the intervals resample (JAFFE:
    the subject in the file name; class folders: each image)."""
    files = image_files(folder, recursive=True)
    if files and all(FILE_PATTERN.match(p.name) for p in files):
        parsed = [parse_name(p) for p in files]
        return files, [e for _, e in parsed], [s for s, _ in parsed]
    return files, [canonical(p.parent.name) for p in files], [str(p) for p in files]


def intervals(labels: list[str], predicted: list[str], classes: list[str],
              groups: list[str]) -> dict:
    """95% bootstrap intervals resampling ``groups`` (JAFFE: the ten women); a face the
    detector missed counts as wrong (an extra class; macro-F1's interval only without one)."""
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[t] for t in labels])
    p = np.array([index.get(q, len(classes)) for q in predicted])
    missed = bool((p == len(classes)).any())
    ci = bootstrap_ci(y, p, len(classes) + missed, groups=groups)
    if missed:  # the extra class would count in the macro average
        ci.pop("macro_f1")
    return ci


def tilted(files: list[Path], degrees: float) -> list[Path] | list[np.ndarray]:
    """The files themselves (no tilt), or each decoded and rotated by +degrees and
    -degrees in turn."""
    if not degrees:
        return files
    images = []
    for i, path in enumerate(files):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees if i % 2 == 0 else -degrees,
                                         1.0)
        images.append(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return images


def paired_scores(labels: list[str], predicted: list[str], baseline: list[str],
                  groups: list[str]) -> dict:
    """Accuracy and macro-F1 of ``predicted`` minus ``baseline`` on the same faces, with 95%
    intervals over the same resamples of ``groups``, and the faces only one of them gets
    right."""
    classes = sorted(set(labels) | set(predicted) | set(baseline))
    index = {c: i for i, c in enumerate(classes)}
    y, a, b = (np.array([index[c] for c in seq]) for seq in (labels, predicted, baseline))
    paired = paired_bootstrap(y, a, b, len(classes), groups=groups)
    out = {metric: {"difference": round(paired[metric]["difference"], 4),
                    "ci95": [round(v, 4) for v in paired[metric]["ci"]]}
           for metric in ("accuracy", "macro_f1")}
    if "no face" in classes:  # a missed face's extra class would count in the macro average
        out.pop("macro_f1")
    return {**out, "only_this_right": int(((a == y) & (b != y)).sum()),
            "only_baseline_right": int(((a != y) & (b == y)).sum())}


def score(files: list[Path] | list[np.ndarray], labels: list[str], model, detector: str, tta: str,
          margin: float = MARGIN, groups: list[str] | None = None, align: str = "none",
          baseline: list[str] | None = None) -> dict:
    """Accuracy, macro-F1, per-class recall and intervals of one detector, margin and
    aligner; with ``baseline`` (another setting's predictions) the paired difference too."""
    start = time.perf_counter()
    results = predict(files, model=model, detect=detector != "none", tta=tta,
                      detector="auto" if detector == "none" else detector, margin=margin,
                      align=align)
    seconds = time.perf_counter() - start
    predicted, no_face = [], 0
    for r in results:
        if not r.faces:
            no_face += 1
            predicted.append("no face")
            continue
        face = max(r.faces, key=lambda f: f.box[2] * f.box[3])
        predicted.append(face.emotion)
    groups = groups or [str(i) for i in range(len(files))]
    classes = sorted(set(labels))
    recall = recall_score(labels, predicted, labels=classes, average=None, zero_division=0)
    return {
        "detector": results[0].detector if detector != "none" else None,
        "aligner": results[0].aligner,
        "margin": margin,
        "accuracy": round(sum(p == t for p, t in zip(predicted, labels, strict=True))
                          / len(labels), 4),
        "macro_f1": round(float(f1_score(labels, predicted, labels=classes, average="macro",
                                         zero_division=0)), 4),
        "recall": {c: round(float(v), 3) for c, v in zip(classes, recall, strict=True)},
        # where each emotion's faces went: the errors a recall of 0 hides
        "predicted_as": {c: dict(Counter(p for p, t in zip(predicted, labels, strict=True)
                                         if t == c).most_common(3)) for c in classes},
        "no_face": no_face,
        "ci95": intervals(labels, predicted, classes, groups),
        "seconds": round(seconds, 1),
        "predicted": predicted,
        **({"paired_vs_first": paired_scores(labels, predicted, baseline, groups)}
           if baseline is not None else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--detectors", nargs="*", default=["haar", "auto"],
                        help="detector names, or none (whole image)")
    parser.add_argument("--model", default=None, help="checkpoint (default: bundled)")
    parser.add_argument("--tta", default=None, help="none, flip or tencrop (default: model's)")
    parser.add_argument("--margins", nargs="*", type=float, default=[MARGIN],
                        help="margins around the detector's box (share of its side, each "
                        "side) to compare; the first is what `by_detector` uses")
    parser.add_argument("--tilt", type=float, default=0.0,
                        help="rotate the images by this many degrees, alternating direction")
    parser.add_argument("--aligners", nargs="*", default=["none"],
                        help="eye finders levelling the faces (none, eyes, dlib, haar) to "
                        "compare with the first detector; the first is what `by_detector` uses")
    args = parser.parse_args()
    torch.set_num_threads(1)
    files, labels, groups = labelled_files(args.data)
    inputs = tilted(files, args.tilt)
    model = resolve_model(args.model, "cpu")
    tta = args.tta or (model.tta if model.tta else "none")
    align = args.aligners[0]
    report = {"data": str(args.data), "images": len(files), "model": args.model or "bundled",
              "tta": tta, "tilt": args.tilt,
              "by_detector": {d: score(inputs, labels, model, d, tta, groups=groups,
                                       align=align) for d in args.detectors}}
    first = report["by_detector"][args.detectors[0]]["predicted"]
    if len(args.margins) > 1:  # the crop predict gives the model, against the training crop
        report["by_margin"] = {str(m): score(inputs, labels, model, args.detectors[0], tta, m,
                                             groups, align, first) for m in args.margins[1:]}
    if len(args.aligners) > 1:  # levelled by the eyes or not, the same detector and margin
        report["by_aligner"] = {a: score(inputs, labels, model, args.detectors[0], tta,
                                         args.margins[0], groups, a, first)
                                for a in args.aligners[1:]}
    for section in ("by_detector", "by_margin", "by_aligner"):
        for result in report.get(section, {}).values():
            del result["predicted"]  # per-face lists: for the paired differences only
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
