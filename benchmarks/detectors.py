"""Face detection recall and speed of every installed detector, side by side, as JSON.

    python benchmarks/detectors.py --data ../shared/data/jaffe
    python benchmarks/detectors.py --data ../shared/data/sfew2/Val --limit 200

Each image of the folder (JAFFE: 213 posed faces, one per image) is shown to each detector as
it is and in three harder forms made from it, so that every condition has a known face
region:

- ``as_is``: the image itself;
- ``tilted``: rotated by 30 degrees about its centre (a tilted head);
- ``covered``: a flat block over the mouth and chin (a hand over the face);
- ``small``: shrunk to ``--small`` pixels and pasted at a random place into a 640x480
  blurred-noise scene (a small face in a photo).

A face counts as found when a box's centre lies inside the face region and the box is at
least a fifth of the region's side; every other box is a false detection. Seconds per image
are the detector's own time on one thread. Detectors whose package is missing are listed
with the reason and skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from feraug.errors import FeraugError
from feraug.predict.detect import DETECTORS, Box, get_detector

Region = tuple[int, int, int, int]
IMAGE_SUFFIXES = {".tiff", ".tif", ".png", ".jpg", ".jpeg", ".bmp"}


def read_images(folder: Path, limit: int | None) -> list[np.ndarray]:
    """Grayscale images under ``folder`` (walked recursively) in path order; with ``limit``,
    that many spread evenly over the list (every class folder is represented)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is not None and limit < len(files):
        files = [files[int(i)] for i in np.linspace(0, len(files) - 1, limit)]
    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in files]
    return [im for im in images if im is not None]


def central_region(image: np.ndarray, margin: float = 0.15) -> Region:
    """The image minus a margin: where a tight portrait's face lies."""
    h, w = image.shape[:2]
    return int(w * margin), int(h * margin), int(w * (1 - 2 * margin)), int(h * (1 - 2 * margin))


def tilted(image: np.ndarray, angle: float = 30.0) -> tuple[np.ndarray, Region]:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    out = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return out, central_region(image)


def covered(image: np.ndarray) -> tuple[np.ndarray, Region]:
    h, w = image.shape[:2]
    out = image.copy()
    out[int(h * 0.62):int(h * 0.92), int(w * 0.28):int(w * 0.78)] = 150
    return out, central_region(image)


def small(image: np.ndarray, side: int, rng: np.random.Generator) -> tuple[np.ndarray, Region]:
    scene = rng.integers(0, 256, (480, 640), dtype=np.uint8)
    scene = cv2.GaussianBlur(scene, (0, 0), 6)
    scene = cv2.normalize(scene, None, 40, 220, cv2.NORM_MINMAX)
    face = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    x, y = int(rng.integers(0, 640 - side)), int(rng.integers(0, 480 - side))
    scene[y:y + side, x:x + side] = face
    m = int(side * 0.15)
    return scene, (x + m, y + m, side - 2 * m, side - 2 * m)


def is_hit(box: Box, region: Region) -> bool:
    bx, by, bw, bh = box
    rx, ry, rw, rh = region
    cx, cy = bx + bw / 2, by + bh / 2
    inside = rx <= cx <= rx + rw and ry <= cy <= ry + rh
    return inside and max(bw, bh) >= min(rw, rh) / 5


def conditions(images: list[np.ndarray], small_side: int, seed: int):
    """``{condition: [(image, face region), ...]}`` built from the same images."""
    rng = np.random.default_rng(seed)
    return {
        "as_is": [(im, central_region(im)) for im in images],
        "tilted": [tilted(im) for im in images],
        "covered": [covered(im) for im in images],
        "small": [small(im, small_side, rng) for im in images],
    }


def measure(detect, cases: list[tuple[np.ndarray, Region]]) -> dict:
    found = false = 0
    start = time.perf_counter()
    for image, region in cases:
        boxes = detect(image)
        hits = [is_hit(b, region) for b in boxes]
        found += any(hits)
        false += len(hits) - sum(hits)
    seconds = time.perf_counter() - start
    return {"recall": round(found / len(cases), 3), "false_detections": false,
            "seconds_per_image": round(seconds / len(cases), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of face images")
    parser.add_argument("--detectors", nargs="*", default=sorted(DETECTORS))
    parser.add_argument("--limit", type=int, default=None, help="use the first N images")
    parser.add_argument("--small", type=int, default=96, help="side of the pasted small face")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    images = read_images(args.data, args.limit)
    cases = conditions(images, args.small, args.seed)
    report: dict = {"data": str(args.data), "images": len(images), "small_side": args.small,
                    "detectors": {}}
    for name in args.detectors:
        try:
            detect = get_detector(name)
        except FeraugError as err:
            report["detectors"][name] = {"skipped": str(err)}
            continue
        report["detectors"][name] = {cond: measure(detect, c) for cond, c in cases.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
