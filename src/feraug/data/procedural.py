"""Procedural faces: the embedded default data set behind ``feraug demo``.

Cartoon grayscale faces drawn from parameters, fully vectorised in numpy (about 3,000 faces per
second on one core). Each *identity* has its own head shape, skin tone, eye spacing, nose,
hair band and background; each *expression* moves the mouth (curve, openness, width, asymmetry),
the brows (angle, height), the eyes (openness) and the nose (wrinkles, nostrils); each *image*
adds parameter noise, a small shift/rotation/zoom, brightness/contrast jitter and pixel noise.

The expression parameter ranges overlap on purpose (fear vs. surprise, angry vs. disgust,
sad vs. neutral), so the classes are learnable but not trivially separable. Splits are
subject-disjoint (no identity appears in two splits). The same seed gives the same pixels.

These are not real faces: use them to check that the pipeline works, never to claim anything
about facial expression recognition.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from feraug.data.dataset import FaceDataset
from feraug.data.splits import assign_splits
from feraug.emotions import FER2013_CLASSES, canonical, sort_classes
from feraug.errors import DataError

FORMAT = "procedural"
_CHUNK = 128  # faces rendered at once (keeps the working set in cache)

#: Default images per class: deliberately imbalanced like FER2013 (disgust is rare).
DEFAULT_COUNTS: dict[str, int] = {
    "angry": 300,
    "disgust": 60,
    "fear": 250,
    "happy": 600,
    "sad": 400,
    "surprise": 300,
    "neutral": 450,
}

#: Split name -> folder name of the FER2013 usage layout (see :func:`save_image_folder`).
SPLIT_FOLDERS: dict[str, str] = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}

# Expression parameters: name -> (mean, standard deviation) per emotion. Units are in the
# normalised face frame ([-1, 1] across the image, y pointing down).
#   curve   mouth centre below (+) / above (-) its corners: smile > 0, frown < 0
#   open    mouth opening            width  mouth half-width multiplier
#   asym    one mouth corner raised  teeth  visible teeth (0..1)
#   brow_a  brow inner end down (+, angry) or up (-, sad/fear)
#   brow_h  brows raised             eye    eye openness multiplier
#   wrinkle nose wrinkles / flared nostrils (0..1)
_EXPR: dict[str, dict[str, tuple[float, float]]] = {
    "neutral": {"curve": (0.0, 0.02), "open": (0.0, 0.02), "width": (1.0, 0.06),
                "asym": (0.0, 0.01), "teeth": (0.0, 0.0), "brow_a": (0.0, 0.02),
                "brow_h": (0.0, 0.02), "eye": (1.0, 0.1), "wrinkle": (0.0, 0.05)},
    "happy": {"curve": (0.10, 0.035), "open": (0.07, 0.05), "width": (1.15, 0.08),
              "asym": (0.0, 0.01), "teeth": (0.8, 0.2), "brow_a": (0.0, 0.02),
              "brow_h": (0.01, 0.02), "eye": (0.8, 0.12), "wrinkle": (0.0, 0.05)},
    "sad": {"curve": (-0.06, 0.03), "open": (0.0, 0.02), "width": (0.9, 0.07),
            "asym": (0.0, 0.01), "teeth": (0.0, 0.0), "brow_a": (-0.06, 0.03),
            "brow_h": (0.015, 0.02), "eye": (0.8, 0.12), "wrinkle": (0.0, 0.05)},
    "angry": {"curve": (-0.025, 0.03), "open": (0.02, 0.03), "width": (0.9, 0.07),
              "asym": (0.0, 0.01), "teeth": (0.15, 0.2), "brow_a": (0.08, 0.03),
              "brow_h": (-0.03, 0.02), "eye": (0.95, 0.12), "wrinkle": (0.2, 0.15)},
    "disgust": {"curve": (-0.035, 0.03), "open": (0.02, 0.03), "width": (0.95, 0.08),
                "asym": (0.035, 0.02), "teeth": (0.2, 0.2), "brow_a": (0.05, 0.03),
                "brow_h": (-0.025, 0.02), "eye": (0.75, 0.12), "wrinkle": (0.7, 0.2)},
    "fear": {"curve": (-0.02, 0.03), "open": (0.08, 0.04), "width": (1.15, 0.08),
             "asym": (0.0, 0.01), "teeth": (0.4, 0.25), "brow_a": (-0.045, 0.03),
             "brow_h": (0.06, 0.025), "eye": (1.35, 0.15), "wrinkle": (0.0, 0.05)},
    "surprise": {"curve": (0.0, 0.025), "open": (0.15, 0.05), "width": (0.8, 0.08),
                 "asym": (0.0, 0.01), "teeth": (0.1, 0.15), "brow_a": (-0.01, 0.025),
                 "brow_h": (0.085, 0.025), "eye": (1.45, 0.15), "wrinkle": (0.0, 0.05)},
}


def _identities(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-identity appearance parameters, one array entry per identity."""
    return {
        "rx": rng.uniform(0.58, 0.72, n),        # head half-width
        "ry": rng.uniform(0.78, 0.9, n),         # head half-height
        "skin": rng.uniform(110, 200, n),        # skin grey level
        "bg": rng.uniform(20, 235, n),           # background grey level
        "bg_grad": rng.uniform(-40, 40, n),      # background vertical gradient
        "eye_dx": rng.uniform(0.24, 0.32, n),    # eye distance from the midline
        "eye_y": rng.uniform(-0.16, -0.06, n),   # eye height
        "eye_s": rng.uniform(0.9, 1.15, n),      # eye size
        "nose": rng.uniform(0.16, 0.28, n),      # nose length
        "mouth_y": rng.uniform(0.38, 0.48, n),   # mouth height
        "mouth_w": rng.uniform(0.2, 0.27, n),    # mouth half-width
        "hair_y": rng.uniform(-0.62, -0.42, n),  # hairline
        "hair": rng.uniform(15, 110, n),         # hair grey level
        "brow_t": rng.uniform(0.028, 0.042, n),  # brow thickness
    }


def _alpha(d: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased coverage of a shape from its (approximate) signed distance."""
    return np.clip(0.5 - d / px, 0.0, 1.0)


def _ellipse_d(u: np.ndarray, v: np.ndarray, cx, cy, rx, ry) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse."""
    r = np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)
    return (r - 1.0) * np.minimum(rx, ry)


def _segment_d(u, v, x0, y0, x1, y1, half_thickness) -> np.ndarray:
    """Signed distance to a thick line segment (a capsule)."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy + 1e-9), 0.0, 1.0)
    return np.hypot(u - x0 - t * dx, v - y0 - t * dy) - half_thickness


def _blend(img: np.ndarray, color, alpha: np.ndarray) -> np.ndarray:
    return img + (color - img) * alpha


def _render(p: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Draw a batch of faces; every entry of ``p`` is an array of shape ``[N, 1, 1]``."""
    px = 2.0 / size
    g = (np.arange(size, dtype=np.float32) + 0.5) * px - 1.0
    v0, u0 = np.meshgrid(g, g, indexing="ij")
    # per-image similarity transform: sample the face frame at rotated/shifted/zoomed points
    c, s = np.cos(p["rot"]), np.sin(p["rot"])
    u = (c * u0 + s * v0) / p["zoom"] - p["sx"]
    v = (-s * u0 + c * v0) / p["zoom"] - p["sy"]
    px = px / p["zoom"]  # one output pixel in face-frame units, per image

    img = p["bg"] + p["bg_grad"] * v0
    head_cy = 0.04
    d_head = _ellipse_d(u, v, 0.0, head_cy, p["rx"], p["ry"])
    # neck and shoulders under the head
    d_neck = np.maximum(np.abs(u) - p["rx"] * 0.55, head_cy + p["ry"] * 0.6 - v)
    img = _blend(img, p["skin"] * 0.85, _alpha(d_neck, px))
    # skin with soft shading towards the edge of the head
    shade = 1.0 - 0.22 * np.clip(1.0 + d_head / np.minimum(p["rx"], p["ry"]), 0, 1) ** 2
    img = _blend(img, p["skin"] * shade, _alpha(d_head, px))
    # ears
    for side in (-1.0, 1.0):
        d_ear = _ellipse_d(u, v, side * p["rx"], p["eye_y"] + 0.08, 0.07, 0.13)
        img = _blend(img, p["skin"] * 0.9, _alpha(np.maximum(d_ear, -d_head), px))
    # hair: a band over the top of the head, slightly larger than the head
    d_hair_cap = _ellipse_d(u, v, 0.0, head_cy - 0.03, p["rx"] * 1.06, p["ry"] * 1.04)
    d_hair = np.maximum(d_hair_cap, v - (p["hair_y"] + 0.06 * np.cos(3.0 * u)))
    img = _blend(img, p["hair"], _alpha(d_hair, px))

    # eyes: light sclera, dark iris, lids closing with the openness parameter
    for side in (-1.0, 1.0):
        ex, ey = side * p["eye_dx"], p["eye_y"]
        erx, ery = 0.1 * p["eye_s"], 0.055 * p["eye_s"] * p["eye"]
        d_eye = _ellipse_d(u, v, ex, ey, erx, ery)
        img = _blend(img, p["skin"] * 0.55, _alpha(d_eye - 0.018, px))  # lid outline
        img = _blend(img, 225.0, _alpha(d_eye, px))
        d_iris = np.maximum(np.hypot(u - ex, v - ey) - 0.05 * p["eye_s"], d_eye)
        img = _blend(img, 25.0, _alpha(d_iris, px))
        # brow: inner end lowered by brow_a (angry) or raised (sad/fear), all raised by brow_h
        by = ey - 0.15 - p["brow_h"] - 0.02 * (p["eye"] - 1.0)
        xi, xo = side * (p["eye_dx"] - 0.12), side * (p["eye_dx"] + 0.13)
        d_brow = _segment_d(u, v, xi, by + p["brow_a"], xo, by - 0.3 * p["brow_a"], p["brow_t"])
        img = _blend(img, p["hair"] * 0.8, _alpha(d_brow, px))

    # nose: a soft ridge, nostrils that flare with ``wrinkle``, wrinkles on the bridge
    ny = p["eye_y"] + p["nose"]
    d_ridge = _segment_d(u, v, 0.03, p["eye_y"] + 0.06, 0.045, ny, 0.012)
    img = _blend(img, p["skin"] * 0.78, 0.8 * _alpha(d_ridge, px))
    for side in (-1.0, 1.0):
        d_nostril = _ellipse_d(u, v, side * 0.055, ny + 0.01, 0.03 + 0.015 * p["wrinkle"], 0.018)
        img = _blend(img, p["skin"] * 0.45, _alpha(d_nostril, px))
    for k in range(2):
        wy = p["eye_y"] + 0.05 + 0.04 * k
        d_wr = _segment_d(u, v, -0.06, wy, 0.06, wy, 0.008)
        img = _blend(img, p["skin"] * 0.6, np.clip(p["wrinkle"], 0, 1) * _alpha(d_wr, px))

    # mouth: a curved band around a centre line; the opening is dark, with teeth at the top
    mw = p["mouth_w"] * p["width"]
    uu = u / mw
    inside = np.clip(1.0 - uu**2, 0.0, 1.0)
    my = p["mouth_y"] - 0.5 * p["wrinkle"] * 0.03
    centre = my + p["curve"] * (inside - 0.5) - p["asym"] * uu
    half = 0.014 + p["open"] * np.sqrt(inside)
    d_line = np.maximum(np.abs(v - centre - 0.4 * p["open"]) - half, (np.abs(uu) - 1.0) * mw)
    img = _blend(img, p["skin"] * 0.5, _alpha(d_line - 0.012, px))  # lips
    img = _blend(img, 30.0, _alpha(d_line, px))  # opening
    top = centre + 0.4 * p["open"] - half
    d_teeth = np.maximum(d_line, v - top - 0.45 * (half - 0.014))
    img = _blend(img, 215.0, np.clip(p["teeth"], 0, 1) * _alpha(d_teeth, px))

    img = (img - 128.0) * p["contrast"] + 128.0 + p["bright"]
    return img


def _sample_expressions(rng: np.random.Generator, label_names: list[str]) -> dict[str, np.ndarray]:
    keys = _EXPR["neutral"].keys()
    out = {}
    for k in keys:
        mean = np.array([_EXPR[c][k][0] for c in label_names])
        sd = np.array([_EXPR[c][k][1] for c in label_names])
        out[k] = mean + sd * rng.standard_normal(len(label_names))
    out["eye"] = np.clip(out["eye"], 0.35, 1.9)
    out["open"] = np.clip(out["open"], 0.0, 0.3)
    out["width"] = np.clip(out["width"], 0.6, 1.4)
    return out


def make_procedural_faces(
    n_per_class: dict[str, int] | None = None,
    size: int = 48,
    n_identities: int = 40,
    seed: int = 0,
    folds: int = 5,
    fold: int = 0,
) -> FaceDataset:
    """Draw a labelled, subject-disjointly split data set of procedural grayscale faces.

    ``n_per_class`` maps emotion names (canonical or synonyms) to image counts; the default is
    :data:`DEFAULT_COUNTS` (2,360 images, imbalanced like FER2013). Images are assigned to
    ``n_identities`` identities; ``assign_splits`` with ``folds``/``fold`` then puts whole
    identities into train/val/test. The result is identical for identical arguments.
    """
    counts = dict(DEFAULT_COUNTS if n_per_class is None else n_per_class)
    counts = {canonical(k, source="n_per_class"): int(v) for k, v in counts.items()}
    if any(v < 0 for v in counts.values()) or sum(counts.values()) == 0:
        raise DataError(f"n_per_class: need non-negative counts and at least one image, "
                        f"got {counts}")
    unknown = [c for c in counts if c not in FER2013_CLASSES]
    if unknown:
        raise DataError(f"n_per_class: procedural faces have no expression for {unknown}")
    if n_identities < folds:
        raise DataError(f"n_identities must be at least folds={folds}, got {n_identities}")
    if size < 16:
        raise DataError(f"size must be at least 16 pixels, got {size}")
    classes = sort_classes([c for c, n in counts.items() if n > 0])
    rng = np.random.default_rng(seed)
    ids = _identities(rng, n_identities)

    label_names = [c for c in classes for _ in range(counts[c])]
    n = len(label_names)
    # spread each class evenly over the identities, in a random order
    ident = np.concatenate([rng.permutation(np.arange(counts[c]) % n_identities) for c in classes])
    params = {k: v[ident] for k, v in ids.items()}
    params.update(_sample_expressions(rng, label_names))
    params.update({
        "rot": np.deg2rad(rng.uniform(-8, 8, n)),
        "zoom": rng.uniform(0.93, 1.07, n),
        "sx": rng.uniform(-0.06, 0.06, n),
        "sy": rng.uniform(-0.06, 0.06, n),
        "contrast": rng.uniform(0.75, 1.2, n),
        "bright": rng.normal(0.0, 12.0, n),
    })
    params = {k: np.asarray(v, dtype=np.float32).reshape(n, 1, 1) for k, v in params.items()}
    img = np.concatenate([
        _render({k: v[i : i + _CHUNK] for k, v in params.items()}, size)
        for i in range(0, n, _CHUNK)
    ])
    noise_sd = rng.uniform(1.0, 7.0, n).astype(np.float32).reshape(n, 1, 1)
    img += noise_sd * rng.standard_normal(img.shape, dtype=np.float32)
    pixels = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[c] for c in label_names], dtype=torch.long)
    subjects = [f"id{i:03d}" for i in ident.tolist()]
    split = assign_splits(labels, subjects, k=folds, fold=fold, seed=seed)
    return FaceDataset(
        images=torch.from_numpy(pixels).unsqueeze(1),
        labels=labels,
        classes=classes,
        split=split,
        source_ids=[f"{c}/{i:05d}" for i, c in enumerate(label_names)],
        subjects=subjects,
        format=FORMAT,
        root=f"procedural(seed={seed})",
        extra={"seed": seed, "n_identities": n_identities, "counts": counts},
    )


def save_image_folder(ds: FaceDataset, root: str | Path) -> Path:
    """Write ``ds`` as PNGs in the FER2013 usage layout
    ``root/<Training|PublicTest|PrivateTest>/<class>/<index>.png`` (readable by the
    ``fer2013-folders`` reader). Every image must be in a train/val/test split.
    """
    root = Path(root)
    missing = sorted({s for s in ds.split if s not in SPLIT_FOLDERS})
    if missing:
        raise DataError(f"{ds.root or ds.format}: cannot save images without a split "
                        f"(found splits {missing})")
    pixels = ds.images[:, 0].numpy()
    made: set[Path] = set()
    for i, (s, y) in enumerate(zip(ds.split, ds.labels.tolist(), strict=True)):
        folder = root / SPLIT_FOLDERS[s] / ds.classes[y]
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        if not cv2.imwrite(str(folder / f"{i:05d}.png"), pixels[i]):
            raise DataError(f"{folder / f'{i:05d}.png'}: could not write image")
    return root
