"""Finding, downloading and loading CLIP weights.

Weights come from an open_clip pretrained tag (looked up in our cache folder, then in the Hugging
Face cache, then downloaded), from a local file, or nowhere (random initialisation). Downloads go
to ``NAME.part`` and are renamed only once complete (and checksummed where the source publishes a
checksum), so a partial download never counts as present. Anything missing, partial or corrupt
raises :class:`WeightsUnavailableError` naming the model, the tag, the cache folder and the fixes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from annotator.engine.activation import Activation, decide_activation
from annotator.engine.config import EngineConfigError
from annotator.engine.trust import check_loadable, file_identity
from annotator.errors import WeightsUnavailableError
from annotator.progress import Progress

ProgressCallback = Callable[[Progress], None]

_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_HF_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def cache_root() -> Path:
    """Our cache folder: ``$ANNOTATOR_CACHE_DIR`` if set, else the platform's user cache dir."""
    configured = os.environ.get("ANNOTATOR_CACHE_DIR", "").strip()
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("annotator"))


def weights_dir(cache_dir: str | Path | None = None) -> Path:
    """Where downloaded weights live: ``<cache>/weights/<model>/<tag>/<file>``."""
    return Path(cache_dir) / "weights" if cache_dir else cache_root() / "weights"


def is_offline() -> bool:
    """True when downloads are switched off (``HF_HUB_OFFLINE`` or ``ANNOTATOR_OFFLINE``)."""
    flags = (os.environ.get(name, "") for name in ("HF_HUB_OFFLINE", "ANNOTATOR_OFFLINE"))
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


@cache
def register_model_configs() -> None:
    """Make open_clip aware of the model configs shipped with the engine (the tiny test ViT)."""
    import open_clip

    open_clip.add_model_config(Path(__file__).parent / "model_configs")


def check_model_name(model: str) -> None:
    """Raise :class:`EngineConfigError` when open_clip has no architecture called ``model``."""
    import difflib

    import open_clip

    register_model_configs()
    known = open_clip.list_models()
    if model not in known:
        close = difflib.get_close_matches(model, known, n=5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise EngineConfigError(
            f"Unknown model {model!r}.{hint} 'annotator models list' shows the models with weights."
        )


def supports_dense_heads(model: str) -> bool:
    """Whether ``model``'s image tower is a plain open_clip ViT (what the dense heads need)."""
    import open_clip

    register_model_configs()
    vision = (open_clip.get_model_config(model) or {}).get("vision_cfg", {})
    plain = isinstance(vision.get("layers"), int) and not vision.get("timm_model_name")
    return plain and not vision.get("attentional_pool")


@dataclass(frozen=True)
class WeightsSource:
    """Where the weights of ``model`` tagged ``tag`` can be fetched from (open_clip's table)."""

    model: str
    tag: str
    hf_repo: str
    hf_filenames: tuple[str, ...]
    url: str
    sha256_prefix: str
    quick_gelu: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def list_sources() -> list[tuple[str, str]]:
    """Every ``(model, tag)`` open_clip knows weights for."""
    import open_clip

    return [tuple(pair) for pair in open_clip.list_pretrained()]


def weights_source(model: str, tag: str) -> WeightsSource:
    """Look up ``model``/``tag`` in open_clip's pretrained table."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise EngineConfigError(
            f"Model {model} has no pretrained weights tagged {tag!r}; known tags: "
            f"{', '.join(tags) if tags else 'none'}. Pass --pretrained PATH for a local file."
        )
    return _source_from_cfg(model, tag, cfg)


def _source_from_cfg(model: str, tag: str, cfg: dict) -> WeightsSource:
    hub = cfg.get("hf_hub", "")
    repo, filename = os.path.split(hub) if hub else ("", "")
    url = cfg.get("url", "")
    sha = url.split("/")[-2] if "openaipublic" in url else ""
    return WeightsSource(
        model=model,
        tag=tag,
        hf_repo=repo.rstrip("/"),
        hf_filenames=(filename,) if filename else _HF_FILENAMES,
        url=url,
        sha256_prefix=sha,
        quick_gelu=bool(cfg.get("quick_gelu", False)),
        mean=tuple(cfg.get("mean", _OPENAI_MEAN)),
        std=tuple(cfg.get("std", _OPENAI_STD)),
    )


def _local_name(source: WeightsSource) -> str:
    if source.hf_repo:
        return source.hf_filenames[0]
    return os.path.basename(source.url) or "weights.bin"


def cached_weights_folder(source: WeightsSource, cache_dir: str | Path | None = None) -> Path:
    return weights_dir(cache_dir) / source.model / source.tag


def find_weights(source: WeightsSource, cache_dir: str | Path | None = None) -> Path | None:
    """A complete local copy of ``source``'s weights (our cache, then the HF cache), or ``None``."""
    folder = cached_weights_folder(source, cache_dir)
    for name in (*source.hf_filenames, os.path.basename(source.url)):
        if name and (folder / name).is_file():
            return folder / name
    return _find_in_hf_cache(source)


def _find_in_hf_cache(source: WeightsSource) -> Path | None:
    if not source.hf_repo:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for filename in source.hf_filenames:
        found = try_to_load_from_cache(source.hf_repo, filename)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def partial_downloads(cache_dir: str | Path | None = None) -> list[Path]:
    """Unfinished downloads (``*.part``) in our cache; they are resumed, never loaded."""
    root = weights_dir(cache_dir)
    return sorted(root.rglob("*.part")) if root.is_dir() else []


def missing_weights_error(
    model: str, tag: str, reason: str, cache_dir: str | Path | None = None
) -> WeightsUnavailableError:
    """The error users see when weights cannot be used, with the cache folder and the fixes.

    ``tag`` is an open_clip tag or, for a local file, its path.
    """
    if looks_like_path(tag):
        return WeightsUnavailableError(
            f"The CLIP weights file {tag} for model {model} cannot be used: {reason}.\n"
            f"Cache folder: {weights_dir(cache_dir)}\n"
            f"To fix it, pass '--pretrained PATH' with a complete {model} weights file "
            f"(.safetensors, .bin or .pt), or run 'annotator models download {model}' on a "
            "machine with internet access and use its tag (e.g. --pretrained openai)."
        )
    return WeightsUnavailableError(
        f"The CLIP weights {model}:{tag} are not available: {reason}.\n"
        f"Cache folder: {weights_dir(cache_dir)}\n"
        f"To fix it, either run 'annotator models download {model}:{tag}' on a machine with "
        "internet access (then copy that cache folder to this machine), or pass "
        "'--pretrained PATH' with a local weights file (.safetensors, .bin or .pt)."
    )


def download_weights(
    source: WeightsSource,
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download ``source`` into our cache (resuming a ``.part`` file) and return the final path."""
    if is_offline():
        raise missing_weights_error(
            source.model,
            source.tag,
            "downloads are switched off here (HF_HUB_OFFLINE or ANNOTATOR_OFFLINE is set)",
            cache_dir,
        )
    folder = cached_weights_folder(source, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    errors: list[tuple[str, str]] = []
    for name, url in _candidate_urls(source):
        try:
            return _fetch(
                url, folder / name, source.sha256_prefix if not source.hf_repo else "", progress
            )
        except urllib.error.HTTPError as error:
            errors.append((url, f"HTTP {error.code}"))
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            errors.append((url, str(error)))
    with contextlib.suppress(OSError):
        folder.rmdir()  # only succeeds when nothing (not even a partial file) was written
    raise missing_weights_error(source.model, source.tag, describe_failures(errors), cache_dir)


def describe_failures(errors: list[tuple[str, str]]) -> str:
    """One readable reason for ``(url, reason)`` download failures.

    The same reason from every source (no network: the usual case) is said once, with the hosts
    tried, instead of three long URLs each repeating it."""
    reasons = {reason for _, reason in errors}
    if len(reasons) == 1:
        hosts = ", ".join(dict.fromkeys(urllib.parse.urlsplit(url).netloc for url, _ in errors))
        return f"the download failed ({reasons.pop()}; tried {hosts})"
    return "the download failed (" + "; ".join(f"{url}: {why}" for url, why in errors) + ")"


def _candidate_urls(source: WeightsSource) -> list[tuple[str, str]]:
    urls: list[tuple[str, str]] = []
    if source.hf_repo:
        from huggingface_hub import hf_hub_url

        urls += [(name, hf_hub_url(source.hf_repo, name)) for name in source.hf_filenames]
    if source.url:
        urls.append((os.path.basename(source.url), source.url))
    return urls


def _fetch(url: str, target: Path, sha256_prefix: str, progress: ProgressCallback | None) -> Path:
    part = target.with_name(target.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={done}-"} if done else {}
    request = urllib.request.Request(url, headers={"User-Agent": "annotator", **headers})
    with urllib.request.urlopen(request, timeout=60) as response:
        if done and response.status != 206:
            done = 0  # the server ignored the range: start over
        total = done + int(response.headers.get("Content-Length") or 0)
        with open(part, "ab" if done else "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(Progress(done, total, f"downloading {target.name}"))
    _verify(part, sha256_prefix)
    os.replace(part, target)
    return target


def _verify(path: Path, sha256_prefix: str) -> None:
    if not sha256_prefix:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    if not digest.hexdigest().startswith(sha256_prefix):
        path.unlink(missing_ok=True)
        raise OSError(f"checksum mismatch for {path.name}; the partial file was deleted")


@dataclass(frozen=True)
class ResolvedWeights:
    """What to load: ``path`` (``None`` = random init), the activation and pixel statistics."""

    path: Path | None
    label: str
    quick_gelu: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    identity: str = ""
    activation: Activation | None = None


def looks_like_path(pretrained: str) -> bool:
    return (
        os.sep in pretrained
        or "/" in pretrained
        or pretrained.lower().endswith(WEIGHT_SUFFIXES)
        or Path(pretrained).is_file()
    )


def resolve_weights(
    model: str,
    pretrained: str | None,
    quick_gelu: bool | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> ResolvedWeights:
    """Find (or download) the weights ``pretrained`` names for ``model``."""
    if pretrained is None:
        qg = model.endswith("quickgelu") if quick_gelu is None else quick_gelu
        identity = f"random:seed0:torch{_torch_version()}:open_clip{_open_clip_version()}"
        return ResolvedWeights(None, "random", qg, _OPENAI_MEAN, _OPENAI_STD, identity)
    if looks_like_path(pretrained):
        return _resolve_file(model, Path(pretrained).expanduser(), quick_gelu, cache_dir)
    source = weights_source(model, pretrained)
    path = find_or_download(source, cache_dir, download, progress)
    qg = source.quick_gelu if quick_gelu is None else quick_gelu
    identity = f"tag:{model}:{pretrained}"
    return ResolvedWeights(path, pretrained, qg, source.mean, source.std, identity)


def find_or_download(
    source: WeightsSource,
    cache_dir: str | Path | None = None,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> Path:
    """``source``'s weights from the cache, else downloaded into it when ``download`` (and not
    offline); else :class:`WeightsUnavailableError`. Needs no torch, so a command can call it
    before importing the model code (a missing file fails in a second, not after 10 s)."""
    path = find_weights(source, cache_dir)
    if path is not None:
        return path
    if not download or is_offline():
        why = "downloads are switched off (offline)" if download else "downloads are off"
        raise missing_weights_error(
            source.model, source.tag, f"they are not in the cache and {why}", cache_dir
        )
    return download_weights(source, cache_dir, progress)


def check_weights_file(model: str, path: Path, cache_dir: str | Path | None = None) -> None:
    """Raise :class:`WeightsUnavailableError` when the local weights file ``path`` does not
    exist or is an unfinished download (no torch; whether it loads is checked when loading)."""
    if not path.is_file():
        raise missing_weights_error(model, str(path), "the file does not exist", cache_dir)
    if path.name.endswith(".part"):
        raise missing_weights_error(model, str(path), "it is an unfinished download", cache_dir)


def _resolve_file(
    model: str, path: Path, quick_gelu: bool | None, cache_dir: str | Path | None
) -> ResolvedWeights:
    check_weights_file(model, path, cache_dir)
    published = check_loadable(path, model)
    activation = decide_activation(model, path, quick_gelu, published)
    if activation.warning:
        import warnings

        warnings.warn(activation.warning, WeightsWarning, stacklevel=3)
    identity = f"tag:{published.model}:{published.tag}" if published else file_identity(path)
    return ResolvedWeights(
        path, str(path), activation.quick_gelu, _OPENAI_MEAN, _OPENAI_STD, identity, activation
    )


class WeightsWarning(UserWarning):
    """A weights file will load, but probably not as intended (e.g. OpenAI weights with GELU)."""


def _torch_version() -> str:
    import torch

    return torch.__version__


def _open_clip_version() -> str:
    import open_clip

    return open_clip.__version__
