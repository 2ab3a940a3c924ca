"""``annotator models list | download NAME[:TAG] | info``: the CLIP weights on this machine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from annotator.engine.config import DEFAULT_MODEL, DEFAULT_PRETRAINED
from annotator.wording import plural

if TYPE_CHECKING:
    from annotator.progress import Progress

NAME = "models"
HELP = "list, download and inspect the CLIP weights the zero-shot engine uses"


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="models and weight tags; which are downloaded")
    listing.add_argument("--all", action="store_true", help="include models the heads cannot use")
    listing.add_argument("--present", action="store_true", help="only downloaded weights")
    listing.set_defaults(run=run_list)
    download = actions.add_parser("download", help="download NAME[:TAG] into the cache")
    download.add_argument(
        "name",
        nargs="?",
        default=f"{DEFAULT_MODEL}:{DEFAULT_PRETRAINED}",
        metavar="NAME[:TAG]",
        help=f"default {DEFAULT_MODEL}:{DEFAULT_PRETRAINED}",
    )
    download.set_defaults(run=run_download)
    info = actions.add_parser(
        "info", help="cache location, sizes and what is present; with --pretrained FILE, "
        "whether that file loads and with which activation"
    )  # fmt: skip
    info.add_argument("--pretrained", metavar="FILE", help="a local weights file to inspect")
    info.add_argument("--model", default=DEFAULT_MODEL, help=f"its model (default {DEFAULT_MODEL})")
    gelu = info.add_mutually_exclusive_group()
    gelu.add_argument("--quick-gelu", dest="quick_gelu", action="store_const", const=True)
    gelu.add_argument("--no-quick-gelu", dest="quick_gelu", action="store_const", const=False)
    info.set_defaults(run=run_info, quick_gelu=None)
    presets = actions.add_parser("presets", help="the published inference protocols (--preset)")
    presets.set_defaults(run=run_presets)
    convert = actions.add_parser(
        "convert",
        help="convert a TorchScript .pt archive you trust into a .safetensors file (runs the "
        "archive's code: only for files from a source you trust)",
    )
    convert.add_argument("archive", help="the TorchScript .pt file")
    convert.add_argument("output", nargs="?", help="default: the archive's name as .safetensors")
    convert.add_argument(
        "--trust", action="store_true", help="required: confirms you trust the archive's origin"
    )
    convert.set_defaults(run=run_convert)


def split_name(text: str) -> tuple[str, str | None]:
    """``"ViT-B-16:openai"`` -> ``("ViT-B-16", "openai")``; no tag -> ``(name, None)``."""
    model, _, tag = text.partition(":")
    return model.strip(), (tag.strip() or None)


def _size(num_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""


def run_list(args: argparse.Namespace) -> int:
    from annotator.cli import _model_table as table  # reads open_clip's table without torch
    from annotator.engine import weights

    print(f"{'MODEL':<32} {'TAG':<36} {'SIZE':>10}  PRESENT")
    for model, tag in table.list_sources():
        if not args.all and not table.supports_dense_heads(model):
            continue
        found = weights.find_weights(table.weights_source(model, tag))
        if args.present and found is None:
            continue
        estimate = table.estimated_bytes(model)
        size = (
            _size(found.stat().st_size) if found else (f"~{_size(estimate)}" if estimate else "?")
        )
        default = "  (default)" if (model, tag) == (DEFAULT_MODEL, DEFAULT_PRETRAINED) else ""
        print(f"{model:<32} {tag:<36} {size:>10}  {'yes' if found else 'no'}{default}")
    print("SIZE: the file's size when present, else an estimate (~) of a float32 download.")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from annotator.engine import weights
    from annotator.errors import AnnotatorError

    model, tag = split_name(args.name)
    try:
        weights.check_model_name(model)
        tag = tag or _default_tag(model)
        source = weights.weights_source(model, tag)
        found = weights.find_weights(source)
        if found is not None:
            print(f"{model}:{tag} is already present: {found}")
            return 0
        path = weights.download_weights(source, progress=_bar())
    except AnnotatorError as error:
        print(f"annotator models: {error}", file=sys.stderr)
        return 1
    print(f"\ndownloaded {model}:{tag} to {path} ({_size(path.stat().st_size)})")
    return 0


def _default_tag(model: str) -> str:
    import open_clip

    from annotator.engine.config import EngineConfigError

    tags = open_clip.list_pretrained_tags_by_model(model)
    if not tags:
        raise EngineConfigError(f"Model {model} has no downloadable weights in open_clip")
    return "openai" if "openai" in tags else tags[0]


def _bar() -> Callable[[Progress], None]:
    from tqdm import tqdm

    bar: list[tqdm] = []

    def show(step: Progress) -> None:
        if not bar:
            bar.append(tqdm(total=step.total or None, unit="B", unit_scale=True, desc="weights"))
        bar[0].update(step.done - bar[0].n)

    return show


def _offline_line(switched_off: bool) -> str:
    from annotator.cli._model_table import network_problem

    if switched_off:
        return "yes (HF_HUB_OFFLINE or ANNOTATOR_OFFLINE is set: downloads are switched off)"
    problem = network_problem()
    return f"yes ({problem}; downloads will fail)" if problem else "no"


def run_presets(args: argparse.Namespace) -> int:
    from annotator.engine.config import DEFAULT_PRESET
    from annotator.engine.presets import describe, list_presets

    for preset in list_presets():
        default = "  (default)" if preset.name == DEFAULT_PRESET else ""
        print(f"{preset.name}{default}: {preset.summary}")
        print(f"    published (ViT-B/16, OpenAI weights): {preset.published}")
        print(f"    sets: {describe(preset)}")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from annotator.engine.trust import convert_archive
    from annotator.errors import AnnotatorError

    if not args.trust:
        print(
            "annotator models convert: converting loads the archive, which runs the code it "
            "contains. Pass --trust if the file comes from a source you trust.",
            file=sys.stderr,
        )
        return 2
    archive = Path(args.archive)
    output = Path(args.output) if args.output else archive.with_suffix(".safetensors")
    try:
        convert_archive(archive, output)
    except AnnotatorError as error:
        print(f"annotator models convert: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}; use it with --pretrained {output}")
    return 0


def run_file_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from annotator.engine.activation import decide_activation
    from annotator.engine.trust import UntrustedWeightsError, check_loadable, is_torchscript_archive

    path = Path(args.pretrained).expanduser()
    if not path.is_file():
        print(f"annotator models: {path} does not exist", file=sys.stderr)
        return 1
    kind = "TorchScript archive" if is_torchscript_archive(path) else "weights file (data only)"
    print(f"file: {path}  {_size(path.stat().st_size)}  {kind}")
    try:
        published = check_loadable(path, args.model)
    except UntrustedWeightsError as error:
        print(f"loads: no\n{error}")
        return 1
    if published is not None:
        print(f"published: {published.model}:{published.tag} (SHA-256 matches)")
    activation = decide_activation(args.model, path, args.quick_gelu, published)
    print(f"activation: {activation.name} ({activation.reason})")
    if activation.warning:
        print(f"warning: {activation.warning}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from annotator.engine import weights

    if getattr(args, "pretrained", None):
        return run_file_info(args)

    root = weights.weights_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    complete = [p for p in files if not p.name.endswith(".part")]
    partial = [p for p in files if p.name.endswith(".part")]
    print(f"cache folder: {root}  (set ANNOTATOR_CACHE_DIR to move it)")
    print(f"offline: {_offline_line(weights.is_offline())}")
    print(
        f"downloaded: {plural(len(complete), 'file')}, {_size(sum(p.stat().st_size for p in complete))}"
    )
    for path in complete:
        print(f"  {path.relative_to(root)}  {_size(path.stat().st_size)}")
    for path in partial:
        print(
            f"  {path.relative_to(root)}  {_size(path.stat().st_size)} (unfinished; resumed by "
            "'annotator models download', never loaded)"
        )
    from annotator.cli._model_table import weights_source

    default = weights.find_weights(weights_source(DEFAULT_MODEL, DEFAULT_PRETRAINED))
    print(f"default {DEFAULT_MODEL}:{DEFAULT_PRETRAINED}: {default or 'not present'}")
    return 0
