"""Networks for translators that *edit* a face rather than redraw it.

An expression change is local (mouth, brows, eyes, nose), so the generator predicts an
attention mask ``m`` and a colour image ``c`` and returns ``m * c + (1 - m) * x``
(GANimation, Pumarola et al. 2018): it starts near the identity and only has to learn the
change, and the mask can be kept small by a penalty.

- :class:`MaskUNet`: a small U-Net for 48-64 px faces. Upsampling is nearest-neighbour resize
  followed by a 3 x 3 convolution (Odena et al. 2016), which cannot make the checkerboard
  patterns of transposed convolutions. With ``num_classes`` the target emotion enters through
  conditional instance norms in the bottleneck (a per-emotion scale and shift after each norm;
  a constant label map concatenated to the input would be erased by instance norm) and
  through per-emotion output heads: each emotion has its own mask and colour convolution on
  the shared decoder features. With the bottleneck conditioning alone (zero at
  initialisation, as it must be to start at the identity) every target got the same edit at
  first and the shared weights received opposing gradients from the different targets: a
  guided StarGAN left its guide's cross-entropy at 2.4-2.6 after 200-400 steps on the
  procedural faces, where a one-target CycleGAN reached 0.2 in 125.
- :class:`PatchDiscriminator`: PatchGAN for the hinge loss, spectrally normalised (Miyato
  et al. 2018) or plain and deeper for an R1 penalty, with an optional emotion-classification
  head over the whole feature map (StarGAN's auxiliary classifier).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

#: The edits :class:`MaskUNet` can make, and those that move pixels by a displacement field.
EDITS = ("replace", "residual", "warp", "local_warp", "paste")
FLOW_EDITS = ("warp", "local_warp", "paste")
#: Initial mask logit: sigmoid(-3) ~ 0.05, so an untrained generator returns ~95% of its input.
MASK_BIAS = -3.0
#: Largest displacement of the ``warp`` edit, in normalised coordinates (0.15 of the
#: half-width: 3.6 px at 48 px), enough to lift a mouth corner or a brow, not to move an eye.
MAX_FLOW = 0.15


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


def _conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    kernel = 4 if stride == 2 else 3
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, 1), _norm(cout),
                         nn.LeakyReLU(0.2, True))


class ConditionalResBlock(nn.Module):
    """Residual block whose two instance norms are followed by a per-class scale and shift
    (zero at initialisation, so an untrained block is class-independent)."""

    def __init__(self, channels: int, num_classes: int, style_dim: int = 0,
                 style_init: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.norm1, self.norm2 = _norm(channels), _norm(channels)
        self.film = nn.Embedding(num_classes, 4 * channels) if num_classes > 0 else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
        # a style code shifts the same scales and shifts; zero at first (one edit per face)
        # unless style_init, the std of the shift a unit-normal code makes from the start
        self.style = nn.Linear(style_dim, 4 * channels) if style_dim > 0 else None
        if self.style is not None:
            if style_init > 0:
                nn.init.normal_(self.style.weight, 0.0, style_init / style_dim ** 0.5)
            else:  # draws nothing: the other layers' initial weights stay as without it
                nn.init.zeros_(self.style.weight)
            nn.init.zeros_(self.style.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None,
                style: torch.Tensor | None = None) -> torch.Tensor:
        if self.film is not None:
            if labels is None:
                raise ValueError("this generator is conditional: pass labels")
            film = self.film(labels)
            if self.style is not None and style is not None:
                film = film + self.style(style)
            s1, b1, s2, b2 = (t[:, :, None, None] for t in film.chunk(4, dim=1))
        else:
            s1 = b1 = s2 = b2 = 0.0
        h = F.leaky_relu(self.norm1(self.conv1(x)) * (1 + s1) + b1, 0.2)
        h = self.norm2(self.conv2(h)) * (1 + s2) + b2
        return x + h


class MaskUNet(nn.Module):
    """Encoder (S -> S/4), residual bottleneck, resize-convolution decoder with skips; returns
    ``(edited, mask)`` for float faces ``[N, 1, S, S]`` in [-1, 1].

    ``edit="replace"``: ``mask * colour + (1 - mask) * face`` (GANimation). ``"residual"``:
    ``face + max_shift * mask * change`` (``change`` in [-1, 1]), which darkens or lightens
    the face's own pixels instead of painting flat colour over them (the replaced regions look
    blotchy to Inception features). ``max_shift`` 2 can turn any pixel black or white; a
    smaller one allows shading only, so an expression cannot be a painted bar or hole.
    ``"warp"``: the face's pixels are first moved by a smooth displacement field (predicted at
    S/4, upsampled bilinearly, at most :data:`MAX_FLOW` of the half-width), then the residual
    edit adds what moving cannot make (teeth, shadows). Raised mouth corners and brows are
    displacements, and moved pixels keep the face's own texture and sharpness.
    ``"local_warp"``: as ``"warp"``, but ``mask * moved + (1 - mask) * face`` before the
    residual, so only the masked regions are resampled. Bilinear resampling blurs: a uniform
    quarter-pixel shift of FER2013's neutral train faces raises their Inception FID against
    PublicTest's neutral faces from 35.9 to 37.3 (a trained ``"warp"`` translator moves its
    pixels by about 0.05 px on average, which costs little). ``residual_blur`` (Gaussian sigma
    in pixels, 0: off) low-passes the residual change, so an edit is smooth shading and not
    pixel-level texture: Inception features punish such texture (blurring a trained translator's
    change with sigma 1 after the fact took its happy faces from 39.7 to 36.9 FID against
    PublicTest's happy faces, below their untouched sources' 37.4).

    ``"paste"``: the generator also sees a ``reference``, a real face of the target emotion,
    as a second input channel; that face, matched to the source's mean and contrast and moved
    by the displacement field into place, replaces the source where the mask is on, then the
    residual edit shades the seam. A bounded edit of one expression cannot draw what it
    lacks (an open mouth, teeth); a pasted region of a real face shows it, with a real face's
    texture.
    """

    def __init__(self, ngf: int = 32, n_blocks: int = 3, num_classes: int = 0,
                 edit: str = "replace", max_shift: float = 2.0,
                 residual_blur: float = 0.0, style_dim: int = 0,
                 style_init: float = 0.0) -> None:
        super().__init__()
        if style_dim > 0 and num_classes == 0:
            raise ValueError("a style code needs a conditional generator (num_classes > 0)")
        self.style_dim = style_dim
        if edit not in EDITS:
            raise ValueError(f"edit must be one of {', '.join(EDITS)}, got {edit!r}")
        self.edit, self.max_shift = edit, max_shift
        # not a persistent buffer: checkpoints from before the option load unchanged
        self.register_buffer("blur_kernel", gaussian_kernel(residual_blur), persistent=False)
        self.enc1 = _conv_block(2 if edit == "paste" else 1, ngf)
        self.enc2 = _conv_block(ngf, 2 * ngf, stride=2)
        self.enc3 = _conv_block(2 * ngf, 4 * ngf, stride=2)
        self.blocks = nn.ModuleList(ConditionalResBlock(4 * ngf, num_classes, style_dim,
                                                        style_init) for _ in range(n_blocks))
        self.dec2 = _conv_block(4 * ngf + 2 * ngf, 2 * ngf)
        self.dec1 = _conv_block(2 * ngf + ngf, ngf)
        heads = max(num_classes, 1)
        self.colour = nn.Conv2d(ngf, heads, 3, 1, 1)
        self.mask = nn.Conv2d(ngf, heads, 3, 1, 1)
        self.flow = nn.Conv2d(4 * ngf, 2 * heads, 3, 1, 1) if edit in FLOW_EDITS else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.mask.weight, 0.0, 1e-3)
        nn.init.constant_(self.mask.bias, MASK_BIAS)
        if self.flow is not None:  # no displacement at first: the editor starts at the identity
            nn.init.normal_(self.flow.weight, 0.0, 1e-3)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None,
               style: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The two skip features and the conditioned bottleneck (S/4) of faces ``x``
        (``style``: ``[N, style_dim]`` codes; None: the zero code)."""
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        h = self.enc3(e2)
        for block in self.blocks:
            h = block(h, labels, style)
        return e1, e2, h

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                style: torch.Tensor | None = None, reference: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if (reference is not None) != (self.edit == "paste"):
            raise ValueError("a reference face is given to, and only to, the paste edit")
        if reference is not None:
            reference = match_intensity(reference, x)
        e1, e2, h = self.encode(x if reference is None else torch.cat([x, reference], 1),
                                labels, style)
        moved = None if self.flow is None else \
            self._warp(x if reference is None else reference, self.flow(h), labels)
        if self.edit == "warp":
            x = moved
        h = F.interpolate(h, size=e2.shape[-2:], mode="nearest")
        h = self.dec2(torch.cat([h, e2], 1))
        h = F.interpolate(h, size=e1.shape[-2:], mode="nearest")
        h = self.dec1(torch.cat([h, e1], 1))
        mask, colour = self.mask(h), self.colour(h)
        if mask.shape[1] > 1:  # the requested emotion's own head
            pick = labels.view(-1, 1, 1, 1).expand(-1, 1, *mask.shape[2:])
            mask, colour = mask.gather(1, pick), colour.gather(1, pick)
        mask = torch.sigmoid(mask)
        if self.edit in ("local_warp", "paste"):
            x = mask * moved + (1 - mask) * x
        if self.edit != "replace":  # shift the source's own intensities: its texture stays
            change = self.max_shift * mask * torch.tanh(colour)
            if self.blur_kernel is not None:
                change = blur(change, self.blur_kernel)
            edited = (x + change).clamp(-1, 1)
        else:
            edited = mask * torch.tanh(colour) + (1 - mask) * x
        return edited, mask


    @staticmethod
    def _warp(x: torch.Tensor, flow: torch.Tensor, labels: torch.Tensor | None
              ) -> torch.Tensor:
        """``x`` resampled at positions moved by ``flow`` (``[N, 2 * heads, S/4, S/4]``; the
        requested emotion's head is used), in normalised coordinates."""
        if flow.shape[1] > 2:
            pick = labels.view(-1, 1, 1, 1).mul(2).add(torch.arange(2, device=flow.device)
                                                      .view(1, 2, 1, 1))
            flow = flow.gather(1, pick.expand(-1, -1, *flow.shape[2:]))
        flow = MAX_FLOW * torch.tanh(flow.float())
        flow = F.interpolate(flow, size=x.shape[-2:], mode="bilinear", align_corners=False)
        n, _, h, w = x.shape
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=x.device)
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=x.device)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).expand(n, h, w, 2)
        grid = grid + flow.permute(0, 2, 3, 1)
        return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border",
                             align_corners=False).to(x.dtype)


def match_intensity(reference: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``reference`` faces shifted and scaled to the mean and standard deviation of the
    faces ``x`` (per face), so that a pasted region is lit like the face it lands on."""
    r_mean, r_std = reference.mean((1, 2, 3), keepdim=True), reference.std((1, 2, 3),
                                                                         keepdim=True)
    x_mean, x_std = x.mean((1, 2, 3), keepdim=True), x.std((1, 2, 3), keepdim=True)
    return ((reference - r_mean) / (r_std + 1e-3) * x_std + x_mean).clamp(-1, 1)


def gaussian_kernel(sigma: float) -> torch.Tensor | None:
    """Normalised 1-D Gaussian taps (radius 3 sigma), or None for sigma 0."""
    if sigma <= 0:
        return None
    radius = max(1, round(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of ``[N, 1, H, W]`` maps, edges replicated."""
    r = kernel.numel() // 2
    k = kernel.to(x.dtype)
    x = F.pad(x, (r, r, r, r), mode="replicate")
    return F.conv2d(F.conv2d(x, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))


class PatchDiscriminator(nn.Module):
    """PatchGAN critic: a real/fake score map ``[N, 1, S/4, S/4]`` and, with
    ``num_classes``, emotion logits ``[N, K]`` from the same features.

    By default every convolution is spectrally normalised (Miyato et al. 2018) and the
    trunk has three layers. With ``spectral=False`` the convolutions are plain (regularise
    the critic with an R1 penalty instead, as StyleGAN2 does) and ``extra_layers`` adds 3 x 3
    convolutions at S/4, each widening the receptive field by 8 px (from 22 px at 48 px:
    two extra layers see a whole mouth or both brows at once).

    With ``conditional`` the score map has one channel per emotion and ``forward(x, labels)``
    returns the channel of each face's label: the question becomes "is this a real face *of
    this emotion*?" (a multi-head form of the projection discriminator, Miyato & Koyama 2018),
    so a translated face is judged against real faces of its target emotion, not of any."""

    def __init__(self, ndf: int = 32, num_classes: int = 0, image_size: int = 48,
                 conditional: bool = False, score_gain: float = 1.0, spectral: bool = True,
                 extra_layers: int = 0) -> None:
        super().__init__()

        def conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Module:
            layer = nn.Conv2d(cin, cout, kernel, stride, 1)
            return spectral_norm(layer) if spectral else layer

        trunk = [conv(1, ndf, 4, 2), nn.LeakyReLU(0.2, True),
                 conv(ndf, 2 * ndf, 4, 2), nn.LeakyReLU(0.2, True),
                 conv(2 * ndf, 4 * ndf, 3, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(extra_layers):
            trunk += [conv(4 * ndf, 4 * ndf, 3, 1), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*trunk)
        if conditional and num_classes < 2:
            raise ValueError("a conditional patch discriminator needs at least two classes")
        self.conditional = conditional
        # Spectral norm makes the score map 1-Lipschitz: on edits of real faces the scores of
        # real and edited faces then differ by ~0.1, a tenth of the hinge margin, and the
        # generator gets almost no realism signal. A gain > 1 allows a steeper critic.
        self.score_gain = float(score_gain)
        self.patch = conv(4 * ndf, num_classes if conditional else 1, 3, 1)
        # The class head sees the whole S/4 x S/4 map at once (StarGAN's full-size head):
        # expressions are local, and an average-pooled, spectrally normalised head learned
        # them several times slower on the procedural faces (loss 1.74 vs 0.81 after 150
        # steps), leaving the generator almost no emotion signal.
        self.cls = nn.Conv2d(4 * ndf, num_classes, image_size // 4) if num_classes > 0 \
            else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.features(x)
        logits = None if self.cls is None else self.cls(h).flatten(1)
        scores = self.patch(h) * self.score_gain
        if self.conditional:
            if labels is None:
                raise ValueError("a conditional patch discriminator scores faces of given labels")
            scores = scores.gather(1, labels.view(-1, 1, 1, 1).expand(-1, 1, *scores.shape[2:]))
        return scores, logits


class StyleEncoder(nn.Module):
    """Reads a style code back from a face, one linear head per emotion (a small form of
    StarGAN v2's style encoder). Trained with the generator to recover the code an edit was
    made with, it makes a code that leaves no trace in the face cost the generator."""

    def __init__(self, ndf: int, num_classes: int, style_dim: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * ndf, num_classes * style_dim)
        self.num_classes, self.style_dim = num_classes, style_dim

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        codes = self.head(self.features(x)).view(-1, self.num_classes, self.style_dim)
        return codes[torch.arange(len(labels), device=labels.device), labels]


def r1_penalty(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over faces of the squared gradient norm, with respect
    to the real ``inputs`` (which must require grad), of each face's score: the mean of its
    patch map, the quantity the hinge loss sees, so that gamma keeps StyleGAN2's scale (a
    summed map would multiply the penalty by up to the number of patches squared). Kept in
    the graph, so the critic learns to be flat around real faces."""
    per_face = scores.flatten(1).mean(1)
    (grad,) = torch.autograd.grad(per_face.sum(), inputs, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean relu(1 - D(real)) + mean relu(1 + D(fake))."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels (keeps masks smooth)."""
    return ((x[..., 1:, :] - x[..., :-1, :]).abs().mean()
            + (x[..., :, 1:] - x[..., :, :-1]).abs().mean())
