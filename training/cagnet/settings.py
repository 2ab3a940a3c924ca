"""Settings of the CaGNet generative step (MODELS.md section 3), as one typed dataclass."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CaGNetSettings:
    """Everything that tunes the generative step of a retraining round.

    Sizes: ``latent`` channels of the contextual code z, ``generator_hidden`` widths of the
    generator's hidden layers, ``dropout`` in the generator, ``context_channels`` of the
    contextual module's dilated convolutions (dilations ``dilations``).
    Schedule: ``steps`` iterations, the first ``warmup`` train only the seen step (the generator
    must imitate seen features before its unseen features are worth learning from); after it,
    every iteration is a seen step followed by a finetuning step. ``batch_maps`` feature maps
    per seen step; ``batch_pixels`` real and ``fake_pixels`` generated pixels per finetuning
    step; ``block_fraction`` of the generated pixels come in coherent 3x3 blocks (BF), the rest
    pixel-wise (PF); ``unseen_weight`` is the sampling weight of an unseen class against 1 for a
    seen class. ``crop`` bounds the grid cells (crop x crop) of each map the contextual module
    reads per iteration: its context reaches about 17 cells, so larger images cost no more.
    Loss weights follow the paper: D/C ``gan`` + ``ce``; G ``gan`` + ``mmd`` x MMD
    (RBF bandwidths ``mmd_sigmas``) + ``generator_ce``; contextual module ``kl`` x KL +
    ``context_ce`` x CE; finetuning ``fake_ce`` x CE on generated features.
    """

    latent: int = 16
    generator_hidden: tuple[int, ...] = (256, 256)
    dropout: float = 0.2
    context_channels: int = 32
    dilations: tuple[int, ...] = (1, 2, 5)
    steps: int = 300
    warmup: int = 100
    batch_maps: int = 8
    crop: int = 16
    batch_pixels: int = 1024
    fake_pixels: int = 1024
    block_fraction: float = 0.5
    unseen_weight: float = 10.0
    learning_rate: float = 1e-3
    gan: float = 1.0
    ce: float = 1.0
    mmd: float = 50.0
    mmd_sigmas: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 40.0, 60.0)
    generator_ce: float = 1.0
    kl: float = 100.0
    context_ce: float = 0.5
    fake_ce: float = 1.0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"generative steps must be at least 1, got {self.steps}")
        if not 0 <= self.warmup < self.steps:
            raise ValueError(f"warmup must lie in [0, steps), got {self.warmup}")
        if not 0.0 <= self.block_fraction <= 1.0:
            raise ValueError(f"block_fraction must lie in [0, 1], got {self.block_fraction}")
        self.generator_hidden = tuple(int(w) for w in self.generator_hidden)
        self.dilations = tuple(int(d) for d in self.dilations)
        self.mmd_sigmas = tuple(float(s) for s in self.mmd_sigmas)
