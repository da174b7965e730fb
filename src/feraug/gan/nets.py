"""Image-to-image building blocks shared by the translators (CycleGAN, StarGAN).

- :class:`ResnetGenerator`: Johnson-style encoder / residual blocks / decoder, instance norm,
  sized for 48-64 px faces (two stride-2 downsamplings, so 48 px works at 12 x 12); with
  ``num_classes`` its encoder/decoder norms become conditional instance norms (a per-class
  scale and shift after each, Dumoulin et al. 2017), which is how StarGAN's target emotion
  enters. (Label maps tiled onto the input, as in the StarGAN paper, do not survive here:
  after reflection padding a constant map adds a spatially constant offset to the first conv's
  output, which the following instance norm subtracts, so the generator cannot see them.)
- :class:`PatchDiscriminator`: a PatchGAN (CycleGAN's 70 x 70 design with fewer layers, so its
  receptive field, 34 px with two strided layers, fits a 48 px face).
- :class:`ImagePool`: the history of generated images that CycleGAN's discriminators see.
"""

from __future__ import annotations

import torch
from torch import nn


def init_normal(net: nn.Module, std: float = 0.02) -> nn.Module:
    """CycleGAN/StarGAN initialisation: conv weights N(0, std), biases 0, norms at (1, 0)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return net


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


class ResidualBlock(nn.Module):
    """Two 3 x 3 convolutions (reflection padding, instance norm) with a skip connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2 ngf), d(4 ngf), ``n_blocks`` x R(4 ngf), u(2 ngf), u(ngf), c7s1-out, tanh.

    With ``num_classes`` > 0, ``forward(x, labels)`` applies a learned per-class scale and
    shift after each of the five encoder/decoder instance norms (conditional instance norm);
    they start at zero, so an untrained conditional generator equals the unconditional one.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, ngf: int = 32,
                 n_blocks: int = 4, num_classes: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), _norm(ngf), nn.ReLU(True),
        ]
        ch = ngf
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), _norm(ch * 2),
                       nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal(self)
        self.cond_sizes = [m.num_features for m in self.net if isinstance(m, nn.InstanceNorm2d)]
        self.film: nn.Embedding | None = None
        if num_classes > 0:
            self.film = nn.Embedding(num_classes, 2 * sum(self.cond_sizes))
            nn.init.zeros_(self.film.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Translate ``x``; ``labels`` (class indices) are required when conditional."""
        if self.film is None:
            return self.net(x)
        if labels is None:
            raise ValueError("this generator is conditional: pass labels")
        scale, shift = self.film(labels).chunk(2, dim=1)
        scales, shifts = scale.split(self.cond_sizes, 1), shift.split(self.cond_sizes, 1)
        k = 0
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.InstanceNorm2d):
                x = x * (1 + scales[k][:, :, None, None]) + shifts[k][:, :, None, None]
                k += 1
        return x


class PatchDiscriminator(nn.Module):
    """PatchGAN: 4 x 4 convs, ``n_layers`` strided, then one stride-1 layer and a 1-channel
    patch map of real/fake scores (no sigmoid: used with least squares)."""

    def __init__(self, in_channels: int = 1, ndf: int = 32, n_layers: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1), _norm(out), nn.LeakyReLU(0.2, True)]
            ch = out
        layers += [nn.Conv2d(ch, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ImagePool:
    """A buffer of up to ``size`` generated images (Shrivastava et al. 2017).

    Once full, each incoming image is, with probability 1/2, swapped for a random stored one
    (which is returned instead). Uses torch's global RNG, so it resumes exactly.
    """

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.images: torch.Tensor | None = None

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same size mixing new and historical images."""
        batch = batch.detach()
        if self.size == 0:
            return batch
        out = batch.clone()
        for i in range(batch.shape[0]):
            n = 0 if self.images is None else self.images.shape[0]
            if n < self.size:
                img = batch[i : i + 1]
                self.images = img.clone() if self.images is None else torch.cat([self.images, img])
            elif torch.rand(()) < 0.5:
                j = int(torch.randint(n, ()))
                out[i] = self.images[j]
                self.images[j] = batch[i]
        return out

    def state_dict(self) -> dict:
        """Pool contents (CPU) for checkpoints."""
        return {"images": None if self.images is None else self.images.cpu()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        """Restore :meth:`state_dict` output onto ``device``."""
        images = state.get("images")
        self.images = None if images is None else images.to(device)
