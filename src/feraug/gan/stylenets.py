"""A small StyleGAN2-style generator and a projection discriminator for 48-64 px faces.

Documented simplifications of StyleGAN2 (Karras et al. 2020), keeping what matters for
class-conditional generation from limited data:

- mapping network: normalised z concatenated with a normalised class embedding -> w
  (2 layers by default, learning-rate multiplier 0.01), as in StyleGAN2-ADA's conditional model;
- synthesis: learned constant at S/8, then style-modulated 3 x 3 convolutions with weight
  demodulation at S/8 -> S/4 -> S/2 -> S (6 -> 12 -> 24 -> 48 for 48 px), skip-connected
  1 x 1 "to image" layers; bilinear upsampling instead of FIR filters; no per-pixel noise
  inputs, no path-length regulariser, no style mixing;
- discriminator: residual blocks with average-pool downsampling, minibatch standard deviation,
  and a projection head (Miyato & Koyama 2018): score = psi(h) + <embed(y), h> / sqrt(dim).

All layers use the equalised learning rate (weights scaled at run time by 1/sqrt(fan_in)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (0.2) scaled by sqrt(2) to keep the signal variance."""
    return F.leaky_relu(x, 0.2) * SQRT2


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class EqLinear(nn.Module):
    """Fully connected layer with equalised learning rate and an optional lr multiplier."""

    def __init__(self, in_f: int, out_f: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 act: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_f,), float(bias_init) / lr_mul))
        self.w_gain, self.lr_mul, self.act = lr_mul / math.sqrt(in_f), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight * self.w_gain, self.bias * self.lr_mul)
        return lrelu(y) if self.act else y


class EqConv2d(nn.Module):
    """Convolution with equalised learning rate (same padding)."""

    def __init__(self, in_ch: int, out_ch: int, k: int, bias: bool = True,
                 act: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, k, k))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.gain, self.pad, self.act = 1.0 / math.sqrt(in_ch * k * k), k // 2, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight * self.gain, self.bias, padding=self.pad)
        return lrelu(y) if self.act else y


class ModConv(nn.Module):
    """Style-modulated convolution: scale input channels by the style, convolve with a shared
    weight, then (demodulation) rescale each output channel to unit expected variance."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, k: int = 3, demod: bool = True,
                 act: bool = True, up: bool = False) -> None:
        super().__init__()
        self.affine = EqLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, k, k))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.gain = 1.0 / math.sqrt(in_ch * k * k)
        self.pad, self.demod, self.act, self.up = k // 2, demod, act, up

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)  # [B, in]
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        weight = self.weight * self.gain
        y = F.conv2d(x * style[:, :, None, None], weight, padding=self.pad)
        if self.demod:  # sum over in/k/k of (weight * style)^2, per sample and output channel
            d = (style.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()
            y = y * d[:, :, None, None]
        y = y + self.bias.view(1, -1, 1, 1)
        return lrelu(y) if self.act else y


class StyleGenerator(nn.Module):
    """Class-conditional (or, with one class, unconditional) noise -> grayscale face."""

    def __init__(self, num_classes: int, image_size: int = 48, z_dim: int = 128,
                 w_dim: int = 128, map_layers: int = 2, channels: tuple[int, ...] = (128, 128,
                 64, 32), mapping_lr_mul: float = 0.01) -> None:
        super().__init__()
        self.num_classes, self.z_dim = num_classes, z_dim
        self.embed = EqLinear(num_classes, z_dim) if num_classes > 1 else None
        dims = [z_dim * (2 if self.embed is not None else 1)] + [w_dim] * map_layers
        self.mapping = nn.Sequential(*[EqLinear(a, b, lr_mul=mapping_lr_mul, act=True)
                                       for a, b in zip(dims[:-1], dims[1:], strict=True)])
        start = image_size // 2 ** (len(channels) - 1)
        self.const = nn.Parameter(torch.randn(channels[0], start, start))
        self.conv0 = ModConv(channels[0], channels[0], w_dim)
        self.to_img0 = ModConv(channels[0], 1, w_dim, k=1, demod=False, act=False)
        self.blocks = nn.ModuleList()
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            self.blocks.append(nn.ModuleList([
                ModConv(c_in, c_out, w_dim, up=True),
                ModConv(c_out, c_out, w_dim),
                ModConv(c_out, 1, w_dim, k=1, demod=False, act=False),
            ]))

    def map(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mapping network: ``z`` [B, z_dim] and class indices [B] -> w [B, w_dim]."""
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            onehot = F.one_hot(labels, self.num_classes).to(z.dtype)
            x = torch.cat([x, normalize_2nd_moment(self.embed(onehot))], dim=1)
        return self.mapping(x)

    def synthesize(self, w: torch.Tensor) -> torch.Tensor:
        """Synthesis network: w -> image [B, 1, S, S] (about [-1, 1], not clamped)."""
        x = self.const.unsqueeze(0).expand(w.shape[0], -1, -1, -1)
        x = self.conv0(x, w)
        img = self.to_img0(x, w)
        for conv_up, conv, to_img in self.blocks:
            x = conv(conv_up(x, w), w)
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
            img = img + to_img(x, w)
        return img

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.synthesize(self.map(z, labels))


class DBlock(nn.Module):
    """Residual discriminator block: two 3 x 3 convs then 2 x average-pool, plus a pooled
    1 x 1 skip, summed and scaled by 1/sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = EqConv2d(in_ch, in_ch, 3)
        self.conv2 = EqConv2d(in_ch, out_ch, 3)
        self.skip = EqConv2d(in_ch, out_ch, 1, bias=False, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(self.conv2(self.conv1(x)), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / SQRT2


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append one channel: the average feature std-dev within groups of the batch."""
    b, _, h, w = x.shape
    g = min(group, b)
    while b % g:
        g -= 1
    y = x.float().view(g, -1, *x.shape[1:])
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [B/g]
    y = y.view(1, -1, 1, 1).expand(g, -1, h, w).reshape(b, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class ProjectionDiscriminator(nn.Module):
    """Residual discriminator with a class-projection output (plain score for one class)."""

    def __init__(self, num_classes: int, image_size: int = 48,
                 channels: tuple[int, ...] = (128, 128, 64, 32)) -> None:
        super().__init__()
        chans = tuple(reversed(channels))  # from full resolution down to S/8
        self.num_classes = num_classes
        self.from_img = EqConv2d(1, chans[0], 1)
        self.blocks = nn.Sequential(*[DBlock(a, b) for a, b in zip(chans[:-1], chans[1:],
                                                                  strict=True)])
        end, ch = image_size // 2 ** (len(chans) - 1), chans[-1]
        self.conv = EqConv2d(ch + 1, ch, 3)
        self.fc = EqLinear(ch * end * end, ch, act=True)
        self.out = EqLinear(ch, 1)
        self.embed = EqLinear(num_classes, ch) if num_classes > 1 else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.from_img(x))
        h = self.fc(self.conv(minibatch_stddev(h)).flatten(1))
        score = self.out(h).squeeze(1)
        if self.embed is not None:
            e = self.embed(F.one_hot(labels, self.num_classes).to(h.dtype))
            score = score + (e * h).sum(dim=1) / math.sqrt(h.shape[1])
        return score
