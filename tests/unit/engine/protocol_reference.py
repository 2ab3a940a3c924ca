"""A plain re-derivation of the published inference protocols, written from the papers'
descriptions (NACLIP, SCLIP, ClearCLIP, MaskCLIP, PAMR) with none of the engine's code: used to
check that the engine's presets compute the same logits.

Every function is the straightforward version: full tensors, explicit softmaxes, stacked
neighbours, windows placed as mmsegmentation's slide inference places them.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def resize_short_side(image: np.ndarray, short: int, long_cap: int = 2048) -> np.ndarray:
    """mmcv's keep-ratio resize (bilinear, sizes rounded half up)."""
    height, width = image.shape[:2]
    scale = min(short / min(height, width), long_cap / max(height, width))
    size = (int(width * scale + 0.5), int(height * scale + 0.5))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def normalise(image: np.ndarray) -> Tensor:
    pixels = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).double() / 255.0
    return (pixels - MEAN.double()) / STD.double()


def _split(t: Tensor, heads: int) -> Tensor:
    batch, tokens, width = t.shape
    return t.view(batch, tokens, heads, width // heads).transpose(1, 2)


def _softmax_attention(a: Tensor, b: Tensor, bias: Tensor | float = 0.0) -> Tensor:
    return torch.softmax(a @ b.transpose(-1, -2) * a.shape[-1] ** -0.5 + bias, dim=-1)


def gaussian_bias(grid: tuple[int, int], std: float = 5.0) -> Tensor:
    """NACLIP's neighbourhood: exp(-d^2 / 2 std^2) between patches; zero for the class token."""
    ys = torch.arange(grid[0], dtype=torch.float64).repeat_interleave(grid[1])
    xs = torch.arange(grid[1], dtype=torch.float64).repeat(grid[0])
    squared = (ys[:, None] - ys[None, :]) ** 2 + (xs[:, None] - xs[None, :]) ** 2
    bias = torch.zeros(len(ys) + 1, len(ys) + 1, dtype=torch.float64)
    bias[1:, 1:] = torch.exp(-squared / (2 * std * std))
    return bias


def last_block(block: nn.Module, x: Tensor, grid: tuple[int, int], head: str) -> Tensor:
    """The paper's version of the last transformer block for ``head``."""
    attn = block.attn
    y = block.ln_1(x)
    q, k, v = (y @ attn.in_proj_weight.T + attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (_split(t, attn.num_heads) for t in (q, k, v))
    if head == "maskclip":
        out = v
    elif head == "sclip":
        out = (_softmax_attention(q, q) + _softmax_attention(k, k)) @ v
    elif head == "clearclip":
        out = _softmax_attention(q, q) @ v
    else:
        out = _softmax_attention(k, k, gaussian_bias(grid)) @ v
    out = out.transpose(1, 2).reshape(x.shape)
    out = out @ attn.out_proj.weight.T + attn.out_proj.bias
    if head in ("clearclip", "naclip"):
        return out  # no residual, no feed-forward
    x = x + out
    return x + block.mlp(block.ln_2(x))


def patch_features(visual: nn.Module, pixels: Tensor, head: str) -> Tensor:
    """``[gh * gw, D]`` L2-normalised patch embeddings of ``pixels`` ``[1, 3, H, W]``."""
    patch = visual.conv1.kernel_size[0]
    grid = (pixels.shape[2] // patch, pixels.shape[3] // patch)
    # The patch embedding is a linear map of each patch's pixels (the conv has no bias).
    patches = F.unfold(pixels, patch, stride=patch)  # [1, 3 * p * p, N]
    x = (visual.conv1.weight.flatten(1) @ patches).transpose(1, 2)
    pos = visual.positional_embedding
    side = visual.grid_size
    patch_pos = pos[1:].reshape(1, *side, -1).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos, size=grid, mode="bicubic", align_corners=False)
    pos = torch.cat([pos[:1], patch_pos[0].flatten(1).T])
    x = torch.cat([visual.class_embedding.view(1, 1, -1), x], dim=1) + pos
    x = visual.ln_pre(x)
    blocks = visual.transformer.resblocks
    for block in blocks[:-1]:
        x = block(x)
    x = last_block(blocks[-1], x, grid, head)
    x = visual.ln_post(x[0, 1:]) @ visual.proj
    return x / x.norm(dim=-1, keepdim=True), grid


def text_queries(model: nn.Module, tokenizer, names: list[str], templates) -> Tensor:  # noqa: ANN001
    """``[Q, D]``: per name, the renormalised mean of its normalised template embeddings."""
    rows = []
    for name in names:
        emb = model.encode_text(tokenizer([t.format(name) for t in templates])).double()
        emb = emb / emb.norm(dim=-1, keepdim=True)
        mean = emb.mean(0)
        rows.append(mean / mean.norm())
    return torch.stack(rows)


def crop_logits(visual: nn.Module, crop: Tensor, text: Tensor, head: str) -> Tensor:
    feats, grid = patch_features(visual, crop, head)
    logits = (feats @ text.T).T.reshape(1, -1, *grid)
    return F.interpolate(logits, size=crop.shape[-2:], mode="bilinear", align_corners=False)


def slide_logits(visual, pixels, text, head, crop: int, stride: int) -> Tensor:  # noqa: ANN001
    """mmsegmentation's slide inference: windows clamped to the image, logits averaged."""
    _, _, h_img, w_img = pixels.shape
    h_grids = max(h_img - crop + stride - 1, 0) // stride + 1
    w_grids = max(w_img - crop + stride - 1, 0) // stride + 1
    preds = pixels.new_zeros(1, text.shape[0], h_img, w_img)
    count = pixels.new_zeros(1, 1, h_img, w_img)
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y2, x2 = min(h_idx * stride + crop, h_img), min(w_idx * stride + crop, w_img)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            preds[:, :, y1:y2, x1:x2] += crop_logits(visual, pixels[:, :, y1:y2, x1:x2], text, head)
            count[:, :, y1:y2, x1:x2] += 1
    return preds / count


def pamr(image: Tensor, mask: Tensor, steps: int = 10, dilations=(8, 16)) -> Tensor:  # noqa: ANN001
    """PAMR on ``mask`` ``[1, C, H, W]`` with ``image`` ``[1, 3, H, W]``, all neighbours stacked."""

    def around(t: Tensor, centre: bool) -> Tensor:
        out = []
        for d in dilations:
            p = F.pad(t, [d] * 4, mode="replicate")
            for dy in (-d, 0, d):
                for dx in (-d, 0, d):
                    if centre or dy or dx:
                        out.append(
                            p[:, :, d + dy : d + dy + t.shape[2], d + dx : d + dx + t.shape[3]]
                        )
        return torch.stack(out, dim=2)

    std = around(image, centre=True).std(dim=2, keepdim=True)
    affinity = -(around(image, centre=False) - image.unsqueeze(2)).abs() / (1e-8 + 0.1 * std)
    affinity = torch.softmax(affinity.mean(dim=1, keepdim=True), dim=2)
    for _ in range(steps):
        mask = (around(mask, centre=False) * affinity).sum(dim=2)
    return mask


def reference_protocol(
    model: nn.Module,
    tokenizer,
    image: np.ndarray,
    per_class: list[list[str]],
    p: dict,  # noqa: ANN001
) -> tuple[Tensor, Tensor]:
    """Scaled logits ``[Q, H, W]`` at the original size, labels ``[H, W]``, top-2 class margin."""
    working = resize_short_side(image, p["short_side"])
    pixels = normalise(working)
    names = [name for names in per_class for name in names]
    text = text_queries(model, tokenizer, names, p["templates"])
    visual = model.visual
    if p["window"]:
        logits = slide_logits(visual, pixels, text, p["head"], p["window"], p["stride"])
    else:
        logits = crop_logits(visual, pixels, text, p["head"])
    size = image.shape[:2]
    logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    if p["refine"] == "pamr":
        img = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)
        logits = pamr(img, logits)
    scaled = logits[0] * p["logit_scale"]
    probs = torch.softmax(scaled, dim=0)
    starts = np.cumsum([0] + [len(names) for names in per_class])
    per_class_probs = torch.stack(
        [probs[a:b].amax(0) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    )
    top2 = per_class_probs.topk(2, dim=0).values
    return scaled, per_class_probs.argmax(0), top2[0] - top2[1]
