"""The generative step of one retraining round: train CM, G, D/C on seen classes, alternate with
finetuning C on real seen + generated unseen features (PF and BF), on a fitted head.

The head's feature extractor (``filter_proj``, ``clip_proj``) is frozen: it defines the feature
space. The step adds classifier rows for the unseen classes (:meth:`PixelHead.add_classes`) and
trains the head's ``mix`` trunk and ``classifier`` (shared with the discriminator's output).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from annotator.errors import JobCancelled
from annotator.progress import Progress, ShouldStop
from training.cagnet.data import GenerativeData, map_features, pixel_features, pre_mix
from training.cagnet.networks import (
    ContextModule,
    RealFake,
    class_mmd,
    kl_divergence,
    reparameterise,
)
from training.cagnet.networks import (
    Generator as FeatureGenerator,
)
from training.cagnet.settings import CaGNetSettings
from training.fit import SampleSet, _grad_mode
from training.head import PixelHead

_CANCELLED = "Retraining was cancelled; the previous model version stays active."


@dataclass
class _Prepared:
    """Per-round tensors: pre-mix maps and pixels per image (rows = head indices), the real pool."""

    maps: list[torch.Tensor]
    pixels: list[torch.Tensor]
    pixel_rows: list[torch.Tensor]
    pixel_cells: list[torch.Tensor]
    map_rows: list[torch.Tensor]
    pool: torch.Tensor
    pool_rows: torch.Tensor
    pool_weights: torch.Tensor
    text: torch.Tensor
    prior: torch.Tensor


def _rows(class_ids: tuple[int, ...], ids: np.ndarray) -> torch.Tensor:
    lut = {c: i for i, c in enumerate(class_ids)}
    return torch.from_numpy(np.asarray([lut.get(int(c), -1) for c in ids.ravel()], np.int64))


def _prepare(
    head: PixelHead, data: GenerativeData, samples: SampleSet, unseen: tuple[int, ...],
    settings: CaGNetSettings, device: torch.device,
) -> _Prepared:  # fmt: skip
    class_ids = head.spec.class_ids
    with torch.no_grad():
        maps = [map_features(head, m).to(device) for m in data.images]
        pixels = [pixel_features(head, m).to(device) for m in data.images]
        clip = None if samples.clip is None else torch.from_numpy(samples.clip.astype(np.float32))
        pool = pre_mix(head, torch.from_numpy(samples.filters), clip).to(device)
    prior = torch.tensor([settings.unseen_weight if c in unseen else 1.0 for c in class_ids])
    return _Prepared(
        maps, pixels, [_rows(class_ids, m.pixel_labels).to(device) for m in data.images],
        [torch.from_numpy(m.pixel_cells).to(device) for m in data.images],
        [_rows(class_ids, m.labels).view(m.labels.shape).to(device) for m in data.images],
        pool, _rows(class_ids, samples.labels).to(device),
        torch.from_numpy(samples.weights.astype(np.float32)).to(device),
        data.text_matrix(class_ids).to(device), (prior / prior.sum()).to(device),
    )  # fmt: skip


class _Step:
    """The networks and optimisers of one generative step, and its two kinds of iteration."""

    def __init__(
        self, head: PixelHead, prepared: _Prepared, settings: CaGNetSettings, seed: int,
        device: torch.device,
    ) -> None:  # fmt: skip
        torch.manual_seed(seed)
        hidden = head.spec.hidden
        self.head, self.data, self.settings = head.to(device), prepared, settings
        self.context = ContextModule(
            hidden, settings.context_channels, settings.latent, settings.dilations
        ).to(device)
        self.generator = FeatureGenerator(
            prepared.text.shape[1], settings.latent, settings.generator_hidden, hidden,
            settings.dropout,
        ).to(device)  # fmt: skip
        self.real_fake = RealFake(hidden).to(device)
        for module in (head.filter_proj, head.clip_proj):
            for parameter in module.parameters() if module is not None else ():
                parameter.requires_grad_(False)
        trunk = [*head.mix.parameters(), *head.classifier.parameters()]
        lr = settings.learning_rate
        self.opt_dc = torch.optim.Adam(trunk + list(self.real_fake.parameters()), lr, (0.5, 0.999))
        self.opt_c = torch.optim.Adam(trunk, lr, (0.5, 0.999))
        self.opt_g = torch.optim.Adam(
            [*self.generator.parameters(), *self.context.parameters()], lr, (0.5, 0.999)
        )
        self.rng = np.random.default_rng(seed)
        self.device = device

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head.classifier(self.head.mix(features))

    def discriminate(self, features: torch.Tensor) -> torch.Tensor:
        return self.real_fake(self.head.mix(features))

    def _contexts(self, chosen: np.ndarray) -> list[tuple[torch.Tensor, ...]]:
        """Per image in ``chosen``: (mu, logvar) [cells, Z] of a random crop of its map (at most
        ``crop`` x ``crop`` cells), and the crop's cell index [cells] in the whole map."""
        crops = [self._crop(int(index)) for index in chosen]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for k, (window, _) in enumerate(crops):
            by_shape.setdefault(tuple(window.shape), []).append(k)
        found: dict[int, tuple[torch.Tensor, ...]] = {}
        for members in by_shape.values():
            mu, logvar = self.context(torch.cat([crops[k][0] for k in members]))
            for row, k in enumerate(members):
                found[k] = (mu[row].flatten(1).T, logvar[row].flatten(1).T, crops[k][1])
        return [found[k] for k in range(len(crops))]

    def _crop(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A random crop [1, H, ch, cw] of map ``index`` and its cells' flat indices [ch * cw]."""
        maps = self.data.maps[index]
        height, width = maps.shape[2:]
        ch, cw = min(height, self.settings.crop), min(width, self.settings.crop)
        y = int(self.rng.integers(height - ch + 1))
        x = int(self.rng.integers(width - cw + 1))
        rows = torch.arange(y, y + ch, device=self.device)[:, None] * width
        cells = (rows + torch.arange(x, x + cw, device=self.device)[None]).reshape(-1)
        return maps[:, :, y : y + ch, x : x + cw], cells

    def _crop_shape(self, index: int) -> tuple[int, int]:
        height, width = self.data.maps[index].shape[2:]
        return min(height, self.settings.crop), min(width, self.settings.crop)

    def _choose_maps(self) -> np.ndarray:
        count = len(self.data.maps)
        return self.rng.choice(count, min(count, self.settings.batch_maps), replace=False)

    def _seen_batch(self) -> tuple[torch.Tensor, ...] | None:
        """Real pre-mix pixels, their rows, and their contextual (mu, logvar), of a few images
        (None when the crops drawn hold no stored pixel)."""
        chosen = self._choose_maps()
        per_image = max(1, self.settings.batch_pixels // len(chosen))
        real, rows, mus, logvars = [], [], [], []
        for index, (mu, logvar, cells) in zip(chosen, self._contexts(chosen), strict=True):
            where = torch.full(
                (len(self.data.map_rows[index].reshape(-1)),), -1, device=self.device
            )
            where[cells] = torch.arange(len(cells), device=self.device)
            local = where[self.data.pixel_cells[index]]  # position in the crop, -1 = outside
            inside = torch.nonzero(local >= 0).squeeze(1)
            if len(inside) == 0:
                continue
            pick = inside[torch.randint(len(inside), (per_image,), device=self.device)]
            real.append(self.data.pixels[index][pick])
            rows.append(self.data.pixel_rows[index][pick])
            mus.append(mu[local[pick]])
            logvars.append(logvar[local[pick]])
        if not real:
            return None
        return torch.cat(real), torch.cat(rows), torch.cat(mus), torch.cat(logvars)

    def seen_step(self) -> float:
        """D/C: GAN + CE on real seen features; G: GAN + MMD + CE; CM: KL + CE. Returns D's loss."""
        s = self.settings
        batch = None
        for _ in range(4):
            batch = batch or self._seen_batch()
        if batch is None:
            return float("nan")
        real, rows, mu, logvar = batch
        fake = self.generator(self.data.text[rows], reparameterise(mu, logvar))
        ones, zeros = torch.ones_like(rows, dtype=torch.float32), torch.zeros_like(rows).float()
        loss_d = s.gan * (
            F.binary_cross_entropy_with_logits(self.discriminate(real), ones)
            + F.binary_cross_entropy_with_logits(self.discriminate(fake.detach()), zeros)
        ) + s.ce * F.cross_entropy(self.classify(real), rows)
        self.opt_dc.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_dc.step()
        fake_ce = F.cross_entropy(self.classify(fake), rows)
        loss_g = (
            s.gan * F.binary_cross_entropy_with_logits(self.discriminate(fake), ones)
            + s.mmd * class_mmd(real, fake, rows, s.mmd_sigmas)
            + (s.generator_ce + s.context_ce) * fake_ce
            + s.kl * kl_divergence(mu, logvar)
        )
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return float(loss_d.detach())

    def finetune_step(self) -> float:
        """C on real (human + pseudo) pixels and generated pixels of classes drawn with the
        unseen-weighted prior, pixel-wise (PF) and in coherent 3x3 blocks (BF)."""
        s = self.settings
        pool = self.data.pool
        pick = torch.from_numpy(self.rng.integers(0, len(pool), s.batch_pixels)).to(self.device)
        blocks = int(round(s.fake_pixels * s.block_fraction / 9))
        with torch.no_grad():
            block_rows, block_z = self._blocks(blocks)
            pf = s.fake_pixels - len(block_rows)
            pf_rows = torch.multinomial(self.data.prior, max(pf, 0), replacement=True)
            rows = torch.cat([block_rows, pf_rows])
            z = torch.cat([block_z, torch.randn(len(pf_rows), s.latent, device=self.device)])
            fake = self.generator(self.data.text[rows], z)
        real_loss = F.cross_entropy(
            self.classify(pool[pick]), self.data.pool_rows[pick], reduction="none"
        )
        loss = (real_loss * self.data.pool_weights[pick]).mean()
        loss = loss + s.fake_ce * F.cross_entropy(self.classify(fake), rows)
        self.opt_c.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_c.step()
        return float(loss.detach())

    def _blocks(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` coherent 3x3 label blocks (BF): the layout of a real, fully labelled 3x3
        window of a label map, its classes replaced one-to-one by classes drawn from the prior,
        and the contextual codes of that window. Returns (rows [9 k], z [9 k, Z]), k <= count."""
        windows = self._windows(count)
        rows, codes = [], []
        for layout, mu, logvar in windows:
            present = layout.unique()
            drawn = torch.multinomial(self.data.prior, len(present), replacement=False)
            remap = torch.zeros(int(present.max()) + 1, dtype=torch.long, device=self.device)
            remap[present] = drawn
            rows.append(remap[layout])
            codes.append(reparameterise(mu, logvar))
        if not rows:
            empty = torch.zeros(0, dtype=torch.long, device=self.device)
            return empty, torch.zeros(0, self.settings.latent, device=self.device)
        return torch.cat(rows), torch.cat(codes)

    def _windows(self, count: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Up to ``count`` fully labelled 3x3 windows of a few random images: (rows [9],
        mu [9, Z], logvar [9, Z]) each."""
        chosen = self._choose_maps()
        found = []
        for index, (mu, logvar, cells) in zip(chosen, self._contexts(chosen), strict=True):
            labels = self.data.map_rows[index].reshape(-1)[cells]
            height, width = self._crop_shape(index)
            labels = labels.view(height, width)
            if height < 3 or width < 3:
                continue
            for _ in range(max(1, 2 * count // len(chosen))):
                y, x = int(self.rng.integers(height - 2)), int(self.rng.integers(width - 2))
                window = labels[y : y + 3, x : x + 3]
                if (window < 0).any():
                    continue
                local = ((torch.arange(3, device=self.device)[:, None] + y) * width
                         + torch.arange(3, device=self.device)[None] + x).reshape(-1)  # fmt: skip
                found.append((window.reshape(-1), mu[local], logvar[local]))
        order = self.rng.permutation(len(found))[:count]
        return [found[i] for i in order]


def fit_generative(
    head: PixelHead,
    data: GenerativeData,
    samples: SampleSet,
    unseen: tuple[int, ...],
    settings: CaGNetSettings,
    should_stop: ShouldStop,
    device: torch.device,
    seed: int = 0,
    progress_data: dict | None = None,
) -> Generator[Progress, None, PixelHead]:
    """Teach ``head`` (fitted on ``samples``: labels are *project class ids* here) the ``unseen``
    class ids from generated features; a batch job. Returns the head (eval mode, CPU) with rows
    for every unseen class it lacked. Progress ``data``: ``{**progress_data, "phase":
    "generative", "step", "loss"}`` (the loss: D/C's during warm-up, C's finetuning loss after).
    Raises :class:`JobCancelled` when ``should_stop()``."""
    if not data.images:
        raise ValueError("no labelled images with CLIP features for the generative step")
    missing = tuple(c for c in unseen if c not in head.spec.class_ids)
    with _grad_mode():  # new rows must not be inference tensors (the GUI steps jobs in one)
        if missing:
            head.add_classes(missing)
        head.train()
        step = _Step(head, _prepare(head, data, samples, set(unseen), settings, device),
                     settings, seed, device)  # fmt: skip
    report_every = max(1, min(10, settings.steps // 50))
    for index in range(1, settings.steps + 1):
        if should_stop():
            raise JobCancelled(_CANCELLED)
        with _grad_mode():
            loss = step.seen_step()
            if index > settings.warmup:
                loss = step.finetune_step()
        if index % report_every == 0 or index == settings.steps:
            data_out = {**(progress_data or {}), "phase": "generative", "step": index, "loss": loss}
            yield Progress(index, settings.steps, f"generative step {index}/{settings.steps}, "
                           f"loss {loss:.4f}", data_out)  # fmt: skip
    for module in (head.filter_proj, head.clip_proj):
        for parameter in module.parameters() if module is not None else ():
            parameter.requires_grad_(True)
    return head.cpu().eval()
