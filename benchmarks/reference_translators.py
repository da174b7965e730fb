"""Reference-style translators, for a throughput comparison with feraug's editing designs.

``gan_throughput.py`` times these beside the current generators in the same run, so that
both are measured under one machine state. They follow the published CycleGAN (Zhu et al.
2017, least-squares loss as Zhu et al. 2018 use it) and StarGAN (Choi et al. 2018) designs,
sized for 48 px: a Johnson-style ResNet generator with transposed-convolution upsampling
(which leaves checkerboard patterns), PatchGAN discriminators with instance norm, an image
pool, least-squares adversarial losses, bf16 autocast on CUDA like the current generators.
They train on random faces here and never make faces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from feraug.gan.nets import ImagePool
from feraug.gan.steps import balanced_streams


def _init(net: nn.Module) -> nn.Module:
    """CycleGAN/StarGAN initialisation: conv weights N(0, 0.02), norms' scales N(1, 0.02)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return net


class _Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2 ngf), d(4 ngf), ``n_blocks`` x R, u(2 ngf), u(ngf), c7s1-1, tanh; with
    ``num_classes`` each encoder/decoder norm gets a per-class scale and shift."""

    def __init__(self, ngf: int = 32, n_blocks: int = 4, num_classes: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(1, ngf, 7),
                                   nn.InstanceNorm2d(ngf, affine=True), nn.ReLU(True)]
        ch = ngf
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1), nn.InstanceNorm2d(ch * 2, affine=True),
                       nn.ReLU(True)]
            ch *= 2
        layers += [_Residual(ch) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(ch // 2, affine=True), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 1, 7), nn.Tanh()]
        self.net = _init(nn.Sequential(*layers))
        self.sizes = [m.num_features for m in self.net if isinstance(m, nn.InstanceNorm2d)]
        self.film = nn.Embedding(num_classes, 2 * sum(self.sizes)) if num_classes else None
        if self.film is not None:  # untrained, the conditional generator is the plain one
            nn.init.zeros_(self.film.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Translate ``x``; ``labels`` (target classes) when the generator is conditional."""
        if self.film is None:
            return self.net(x)
        scale, shift = self.film(labels).chunk(2, dim=1)
        scales, shifts = scale.split(self.sizes, 1), shift.split(self.sizes, 1)
        k = 0
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.InstanceNorm2d):
                x = x * (1 + scales[k][:, :, None, None]) + shifts[k][:, :, None, None]
                k += 1
        return x


def patch_discriminator(ndf: int = 32, n_layers: int = 2) -> nn.Module:
    """PatchGAN with instance norm and a 1-channel score map (least squares, no sigmoid)."""
    layers: list[nn.Module] = [nn.Conv2d(1, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    ch = ndf
    for i in range(1, n_layers + 1):
        out = ndf * min(2 ** i, 8)
        layers += [nn.Conv2d(ch, out, 4, 2 if i < n_layers else 1, 1),
                   nn.InstanceNorm2d(out, affine=True), nn.LeakyReLU(0.2, True)]
        ch = out
    return _init(nn.Sequential(*layers, nn.Conv2d(ch, 1, 4, 1, 1)))


class StarDiscriminator(nn.Module):
    """Strided 4 x 4 convs, a real/fake patch head and a whole-face emotion head."""

    def __init__(self, num_classes: int, size: int, ndf: int = 32, n_layers: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch_in = 1
        for i in range(n_layers):
            ch = ndf * min(2 ** i, 8)
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1), nn.LeakyReLU(0.01, True)]
            ch_in = ch
        self.main = nn.Sequential(*layers)
        self.src = nn.Conv2d(ch_in, 1, 3, 1, 1)
        self.cls = nn.Conv2d(ch_in, num_classes, size // 2 ** n_layers)
        _init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real/fake patch scores and emotion logits."""
        h = self.main(x)
        return self.src(h), self.cls(h).flatten(1)


def _ls(pred: torch.Tensor, value: float) -> torch.Tensor:
    pred = pred.float()
    return F.mse_loss(pred, torch.full_like(pred, value))


class _Reference(nn.Module):
    """What ``gan_throughput.bench`` needs of a generator model."""

    amp = False
    batch_size = 32

    def num_parameters(self) -> dict[str, int]:
        """Parameter count per network."""
        return {n: sum(p.numel() for p in m.parameters()) for n, m in self.named_children()}

    def autocast(self, device: torch.device) -> torch.autocast:
        """bf16 autocast on CUDA when ``amp`` is on, as the current generators use it."""
        return torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=self.amp and device.type == "cuda")

    def _adam(self, *names: str) -> torch.optim.Adam:
        params = [p for n in names for p in getattr(self, n).parameters()]
        return torch.optim.Adam(params, 2e-4, betas=(0.5, 0.999))


class ReferenceCycleGan(_Reference):
    """Two ResNet generators, two PatchGANs, LSGAN + cycle (10) + identity (5) losses."""

    def __init__(self, batch_size: int, classes: tuple[str, ...]) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.a, self.b = classes.index("neutral"), classes.index("disgust")
        self.g_ab, self.g_ba = ResnetGenerator(), ResnetGenerator()
        self.d_a, self.d_b = patch_discriminator(), patch_discriminator()
        self.opt_g, self.opt_d = self._adam("g_ab", "g_ba"), self._adam("d_a", "d_b")
        self.pool_a, self.pool_b = ImagePool(), ImagePool()  # the current cyclegan's pool

    def streams(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        """A batch of neutral (A) and a batch of disgust (B) faces per step."""
        return [((labels == c).nonzero().flatten(), self.batch_size) for c in (self.a, self.b)]

    def train_step(self, real: torch.Tensor, labels: torch.Tensor) -> None:
        """One generator and one discriminator update on ``real`` = A faces then B faces."""
        real_a, real_b = real.chunk(2)
        for d in (self.d_a, self.d_b):
            d.requires_grad_(False)
        with self.autocast(real.device):
            fake_b, fake_a = self.g_ab(real_a), self.g_ba(real_b)
            adv = _ls(self.d_b(fake_b), 1) + _ls(self.d_a(fake_a), 1)
            cyc = F.l1_loss(self.g_ba(fake_b), real_a) + F.l1_loss(self.g_ab(fake_a), real_b)
            idt = F.l1_loss(self.g_ab(real_b), real_b) + F.l1_loss(self.g_ba(real_a), real_a)
        self.opt_g.zero_grad(set_to_none=True)
        (adv + 10 * cyc + 5 * idt).backward()
        self.opt_g.step()
        for d in (self.d_a, self.d_b):
            d.requires_grad_(True)
        pooled_b = self.pool_b.query(fake_b.float())
        pooled_a = self.pool_a.query(fake_a.float())
        with self.autocast(real.device):
            loss_d = 0.5 * (_ls(self.d_b(real_b), 1) + _ls(self.d_b(pooled_b), 0)
                            + _ls(self.d_a(real_a), 1) + _ls(self.d_a(pooled_a), 0))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()


class ReferenceStarGan(_Reference):
    """One conditional ResNet generator, a two-headed discriminator, LSGAN + emotion
    classification (1) + reconstruction (10) losses, class-balanced batches."""

    def __init__(self, batch_size: int, classes: tuple[str, ...], size: int) -> None:
        super().__init__()
        self.batch_size, self.k = batch_size, len(classes)
        self.g = ResnetGenerator(num_classes=self.k)
        self.d = StarDiscriminator(self.k, size)
        self.opt_g, self.opt_d = self._adam("g"), self._adam("d")

    def streams(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        """Class-balanced batches."""
        return balanced_streams(labels, self.k, self.batch_size)

    def train_step(self, real: torch.Tensor, labels: torch.Tensor) -> None:
        """One discriminator and one generator update towards random other emotions."""
        target = (labels + torch.randint(1, self.k, labels.shape, device=labels.device)) % self.k
        with self.autocast(real.device):
            fake = self.g(real, target)
            src_real, cls_real = self.d(real)
            src_fake, _ = self.d(fake.detach())
            loss_d = _ls(src_real, 1) + _ls(src_fake, 0) + \
                F.cross_entropy(cls_real.float(), labels)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.d.requires_grad_(False)
        with self.autocast(real.device):
            src_fake, cls_fake = self.d(fake)
            loss_g = _ls(src_fake, 1) + F.cross_entropy(cls_fake.float(), target) + \
                10 * F.l1_loss(self.g(fake, labels), real)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)


REFERENCE = {"cyclegan-reference": lambda batch, classes, size: ReferenceCycleGan(batch, classes),
             "stargan-reference": ReferenceStarGan}
