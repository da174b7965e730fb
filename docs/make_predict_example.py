"""Make ``docs/predict_example.png``: feraug's prediction on a real, freely licensed photo.

The photo is scikit-image's ``astronaut`` sample (Eileen Collins, NASA; public domain).
Needs scikit-image (``pip install scikit-image``) and a trained model::

    python docs/make_predict_example.py                       # the bundled default model
    python docs/make_predict_example.py --model runs/x/best.pt --out /tmp/example.png

Only commit the PNG when it was made with the trained default model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from feraug.errors import FeraugError
from feraug.predict import predict
from feraug.predict.annotate import annotate

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    """Predict on the astronaut photo, write the annotated PNG, print the result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None,
                    help="classifier checkpoint (default: the model bundled with feraug)")
    ap.add_argument("--out", type=Path, default=HERE / "predict_example.png")
    ap.add_argument("--tta", choices=["none", "flip", "tencrop"], default=None,
                    help="test-time augmentation (default: the checkpoint's)")
    args = ap.parse_args(argv)
    try:
        from skimage import data
    except ImportError:
        print("error: needs scikit-image: pip install scikit-image", file=sys.stderr)
        return 2
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # feraug takes BGR arrays
    try:
        result = predict(photo, model=args.model, tta=args.tta)[0]
    except FeraugError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result.source = "skimage.data.astronaut()"
    if not cv2.imwrite(str(args.out), annotate(photo, result)):
        print(f"error: could not write {args.out}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict(), indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
