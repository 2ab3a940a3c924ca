"""Which weight files may be loaded, and how: nothing from a file is ever run as code.

A TorchScript archive (OpenAI's original ``.pt`` files) is a program: ``torch.jit.load`` runs
the ``__setstate__`` methods it carries, so a crafted archive can act on the machine. Such an
archive is loaded only when its SHA-256 equals a checksum open_clip publishes for OpenAI's files;
any other archive is refused with a message saying how to convert it. Every other file is read as
data only (safetensors, or pickles with ``weights_only=True``).
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from annotator.errors import WeightsUnavailableError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UntrustedWeightsError(WeightsUnavailableError):
    """A weights file would run code on load and is not a published, checksummed file."""


@dataclass(frozen=True)
class PublishedFile:
    """One published weights file: its open_clip model, tag and activation."""

    model: str
    tag: str
    quick_gelu: bool


def is_torchscript_archive(path: Path) -> bool:
    """True for TorchScript zips (OpenAI's original ``.pt`` files): they hold ``constants.pkl``."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


@cache
def published_checksums() -> dict[str, PublishedFile]:
    """SHA-256 (hex) -> published file, from open_clip's pretrained table (OpenAI's URLs carry the
    full checksum of each file)."""
    import open_clip

    table: dict[str, PublishedFile] = {}
    for model, tag in open_clip.list_pretrained():
        cfg = open_clip.get_pretrained_cfg(model, tag) or {}
        url = cfg.get("url", "")
        digest = url.split("/")[-2] if "openaipublic" in url and url.count("/") > 2 else ""
        if _SHA256.match(digest):
            quick = bool(cfg.get("quick_gelu", False)) or tag == "openai"
            table.setdefault(digest, PublishedFile(model, tag, quick))
    return table


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of the file at ``path`` (read in 4 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def published_file(path: Path) -> PublishedFile | None:
    """The published file ``path`` is, by checksum, or ``None`` (hashes only TorchScript archives:
    open_clip publishes checksums for those alone)."""
    if not is_torchscript_archive(path):
        return None
    return published_checksums().get(file_sha256(path))


def refusal(path: Path, model: str) -> UntrustedWeightsError:
    """The error for a TorchScript archive whose checksum is not a published one."""
    return UntrustedWeightsError(
        f"Refusing to load {path}: it is a TorchScript archive, and loading one runs the code it "
        "contains. Its SHA-256 matches none of the published OpenAI CLIP files, so it may have "
        "been modified.\n"
        "If you trust where it comes from, convert it once to a plain weights file (this runs "
        "its code one time) and pass that file instead:\n"
        f"  annotator models convert --trust {path} {path.with_suffix('.safetensors')}\n"
        f"or download the published weights with 'annotator models download {model}'."
    )


def check_loadable(path: Path, model: str) -> PublishedFile | None:
    """Raise :class:`UntrustedWeightsError` for an unpublished TorchScript archive; return the
    published file ``path`` is (``None`` for a plain weights file, which is read as data only)."""
    if not is_torchscript_archive(path):
        return None
    known = published_checksums().get(file_sha256(path))
    if known is None:
        raise refusal(path, model)
    return known


def file_identity(path: Path) -> str:
    """A cheap identity of a weights file for cache keys: absolute path, size and mtime."""
    stat = path.stat()
    return f"file:{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


#: Entries of OpenAI's archives (and scripted open_clip models) that are settings, not weights.
NON_WEIGHT_KEYS = ("input_resolution", "context_length", "vocab_size", "attn_mask")


def convert_archive(archive: Path, output: Path) -> None:
    """Write the weights of the TorchScript ``archive`` to ``output`` (safetensors). Loading the
    archive runs its code: call this only for a file the user said they trust."""
    import warnings

    import torch
    from safetensors.torch import save_file

    if not is_torchscript_archive(archive):
        raise WeightsUnavailableError(
            f"{archive} is not a TorchScript archive; it needs no conversion"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        state = torch.jit.load(str(archive), map_location="cpu").state_dict()
    tensors = {k: v.contiguous() for k, v in state.items() if k not in NON_WEIGHT_KEYS}
    temporary = output.with_name(output.name + ".part")
    # TorchScript CLIP archives are OpenAI's releases, trained with QuickGELU: say so in the file.
    metadata = {"converted_from": archive.name, "quick_gelu": "true"}
    save_file(tensors, str(temporary), metadata=metadata)
    os.replace(temporary, output)
