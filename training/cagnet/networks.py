"""CaGNet's networks and losses over the trained head's pixel features (MODELS.md section 3).

The feature space is the head's *pre-mix* embedding ``h = filter_proj(filters) + clip_proj(clip)``
(:class:`training.head.PixelHead`): the classifier C is the head's own ``mix`` trunk plus its
linear ``classifier``, and the discriminator D shares that trunk with one real/fake output. So the
rows C learns for unseen classes are ordinary :class:`PixelHead` rows, and a version saved after
the generative step loads and predicts exactly like any other.

The contextual module does not refine the features the classifier reads (the paper's refined map
would need a spatial layer inside the head, which the engine's per-pixel adapter does not have);
it yields the contextual latent code z of every pixel, from which the generator imitates that
pixel's real feature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ContextModule(nn.Module):
    """Feature maps [B, H, h, w] -> (mu, logvar) [B, Z, h, w] of the contextual latent code.

    Three dilated 3x3 convolutions (dilations 1, 2, 5 by default) applied one after the other
    give context maps at growing scales; the context selector (a 1x1 conv + softmax over the
    scales) weighs them per pixel; 1x1 convs of the weighted context give mu and log-variance.
    """

    def __init__(self, channels: int, hidden: int, latent: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        width = channels
        for dilation in dilations:
            self.convs.append(nn.Conv2d(width, hidden, 3, padding=dilation, dilation=dilation))
            width = hidden
        self.selector = nn.Conv2d(hidden * len(dilations), len(dilations), 1)
        self.mu = nn.Conv2d(hidden, latent, 1)
        self.logvar = nn.Conv2d(hidden, latent, 1)

    def forward(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        contexts, x = [], maps
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            contexts.append(x)
        weights = torch.softmax(self.selector(torch.cat(contexts, dim=1)), dim=1)
        context = sum(w.unsqueeze(1) * c for w, c in zip(weights.unbind(1), contexts, strict=True))
        return self.mu(context), self.logvar(context).clamp(-8.0, 8.0)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """A sample ``mu + eps * exp(logvar / 2)`` (training); use ``mu`` itself at test time."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over channels, averaged over rows [N, Z]."""
    return -0.5 * (1.0 + logvar - mu.square() - logvar.exp()).sum(dim=1).mean()


class Generator(nn.Module):
    """[text embedding (T) || latent z (Z)] -> fake pre-mix pixel feature [N, H].

    Linear layers (1x1 convolutions over pixels) with LeakyReLU(0.2) and dropout, as in the
    paper; the output is linear because the pre-mix features are unbounded.
    """

    def __init__(self, text: int, latent: int, hidden: tuple[int, ...], out: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = text + latent
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, out))
        self.net = nn.Sequential(*layers)

    def forward(self, text: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([text, z], dim=1))


def mmd(real: torch.Tensor, fake: torch.Tensor, sigmas: tuple[float, ...]) -> torch.Tensor:
    """Maximum mean discrepancy between rows of ``real`` [M, H] and ``fake`` [N, H].

    A sum of RBF kernels ``exp(-||a - b||^2 / (2 sigma))`` over the bandwidths ``sigmas`` (the
    reference code's convention: sigma scales the squared distance), square-rooted.
    """
    points = torch.cat([real, fake])
    squared = torch.cdist(points, points).square()
    kernel = sum(torch.exp(-squared / (2.0 * s)) for s in sigmas)
    m = real.shape[0]
    value = kernel[:m, :m].mean() + kernel[m:, m:].mean() - 2.0 * kernel[:m, m:].mean()
    return value.clamp_min(1e-12).sqrt()


def class_mmd(
    real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor, sigmas: tuple[float, ...]
) -> torch.Tensor:
    """Mean over the classes in ``labels`` [N] of the MMD between that class's real and fake rows
    (``real`` and ``fake`` [N, H] are paired row by row with ``labels``)."""
    losses = [mmd(real[labels == c], fake[labels == c], sigmas) for c in labels.unique()]
    return torch.stack(losses).mean()


class RealFake(nn.Module):
    """The discriminator's own output: one logit (real vs generated) on the shared trunk."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.out = nn.Linear(hidden, 1)

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        return self.out(trunk).squeeze(1)
