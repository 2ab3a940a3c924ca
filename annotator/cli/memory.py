"""``annotator memory FOLDER [--update | --rebuild]``: the project's class memory (MCIBI, seed
paper 003).

The memory holds what each labelled class looks like in this data set (in the engine's feature
space); proposals use it at once, before any retraining. It learns whenever labels are saved in
the app or imported; ``--rebuild`` starts over from every human label (e.g. after switching model).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from annotator.cli._engine_flags import add_engine_arguments
from annotator.cli._project_flags import add_sidecar_argument
from annotator.wording import plural

NAME = "memory"
HELP = "show the project's class memory (labelled images per class); --rebuild it from all labels"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="project folder (images plus their .annotator data)")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="forget the memory and learn it again from every human label (loads the model)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="learn the labelled images the memory has not learned yet (e.g. after an import "
        "that was stopped or ran without weights)",
    )
    add_sidecar_argument(parser)
    add_engine_arguments(parser)
    parser.set_defaults(run=run)


def memory_engine_config(args: argparse.Namespace, project: Any) -> Any:
    """The EngineConfig the project's flags describe (given flags, else the remembered ones,
    else the defaults)."""
    from annotator.cli._engine_flags import engine_config_from_args
    from annotator.cli.train import ENGINE_SETTING, resolve_engine_args

    chosen = resolve_engine_args(args, project.get_setting(ENGINE_SETTING))
    return engine_config_from_args(argparse.Namespace(**{**vars(args), **chosen}))


def create_memory_segmenter(args: argparse.Namespace, project: Any) -> Any:
    """The engine of :func:`memory_engine_config`; its ``available`` is False when the CLIP
    weights are missing."""
    from annotator.engine import create_segmenter

    return create_segmenter(memory_engine_config(args, project), allow_missing_weights=True)


def missing_weights(config: Any) -> str | None:
    """Why ``config``'s CLIP weights are surely not on this machine, found by looking in the
    cache (no torch, no model: an import without weights must not wait 10 s to learn nothing).
    None when they are there, may still be downloaded, or the look-up cannot tell."""
    from pathlib import Path

    from annotator.cli._weights_check import table_source
    from annotator.engine import weights

    tag = config.pretrained
    if tag is None:  # random weights: nothing to find
        return None
    if weights.looks_like_path(tag):
        exists = Path(tag).expanduser().is_file()
        return None if exists else f"the weights file {tag} does not exist"
    if config.download and not weights.is_offline():
        return None
    source = table_source(config.model, tag)
    if source is None:  # unknown model or tag: the engine says which, later
        return None
    found = weights.find_weights(source, config.cache_dir)
    return None if found else f"the CLIP weights {config.model}:{tag} are not in the cache"


def default_engine_args() -> argparse.Namespace:
    """The engine flags at their defaults, never downloading (for commands without them)."""
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    args = parser.parse_args([])
    args.no_download = True
    return args


def _usable_segmenter(config: Any) -> tuple[Any, str | None]:
    """(segmenter, None), or (None, why the CLIP weights are missing) without loading torch
    when a look in the cache already tells."""
    reason = missing_weights(config)
    if reason is not None:
        return None, reason
    if (problem := _download_first(config)) is not None:
        return None, _first_line(problem)
    from annotator.engine import create_segmenter

    segmenter = create_segmenter(config, allow_missing_weights=True)
    if segmenter.available:
        return segmenter, None
    return None, _first_line(segmenter.weights_error)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0].rstrip(".")


def _download_first(config: Any) -> Any:
    """The missing-weights error found (or the download tried) before torch loads, or None."""
    from annotator.cli._weights_check import weights_problem
    from annotator.cli.propose import download_bar

    return weights_problem(config, download_bar())


def learn_new_labels(project: Any, args: argparse.Namespace | None = None) -> int | None:
    """Teach the memory every human-labelled image it has not learned (after an import).
    Returns the number learned, or None (note on stderr) when no CLIP weights are available."""
    from annotator.cli.export import drain
    from annotator.engine.memory import learn_project_job, load_project_memory, memory_folder

    config = memory_engine_config(args or default_engine_args(), project)
    segmenter, reason = _usable_segmenter(config)
    if reason is not None:
        print(
            f"note: the class memory was not updated: {reason} ('annotator models info' says "
            f"how to get them); once they are there, run 'annotator memory {project.root} "
            "--update'.",
            file=sys.stderr,
        )
        return None
    memory = load_project_memory(project, segmenter)
    try:
        return drain(learn_project_job(project, segmenter, memory), "memory")
    except KeyboardInterrupt:
        memory.save(memory_folder(project))
        print(
            f"\nnote: the class memory stopped learning; 'annotator memory {project.root} "
            "--update' goes on where it stopped.",
            file=sys.stderr,
        )
        return None


def _rebuild(args: argparse.Namespace, project: Any) -> int:
    from annotator.cli.export import drain
    from annotator.engine.memory import ClassMemory, learn_project_job, memory_key

    problem = _download_first(memory_engine_config(args, project))
    segmenter = None if problem else create_memory_segmenter(args, project)
    if segmenter is None or not segmenter.available:
        print(f"annotator memory: {problem or segmenter.weights_error}", file=sys.stderr)
        return 1
    memory = ClassMemory(memory_key(segmenter))
    learned = drain(learn_project_job(project, segmenter, memory), "memory")
    print(f"rebuilt the class memory from {plural(learned, 'labelled image')}")
    return _show(project)


def format_memory(project: Any, memory: Any) -> str:
    """One line per class (display order): name, labelled images remembered, on/off."""
    from annotator.engine.memory import disabled_classes

    off = disabled_classes(project)
    classes = project.list_classes()
    width = max([len(c.name) for c in classes] + [5])
    lines = [f"{'class':<{width}}  images  memory"]
    for info in classes:
        images = memory.images.get(info.id, 0)
        state = "off" if info.id in off else ("on" if images else "-")
        lines.append(f"{info.name:<{width}}  {images:>6}  {state}")
    lines.append(f"built for: {memory.key}  ({plural(len(memory.learned), 'image')} learned)")
    return "\n".join(lines)


def _show(project: Any) -> int:
    from annotator.engine.memory import MEMORY_FILE, memory_folder, read_memory_file

    path = memory_folder(project) / MEMORY_FILE
    if not path.exists():
        print(
            "no class memory yet: it grows as labels are saved in the app or imported "
            f"('annotator memory {project.root} --rebuild' learns every label now)."
        )
        return 0
    print(format_memory(project, read_memory_file(path)))
    return 0


def run(args: argparse.Namespace) -> int:
    from annotator.cli.export import _open_for_reading
    from annotator.errors import AnnotatorError
    from annotator.project import Project

    try:
        if not (args.rebuild or args.update):
            with _open_for_reading(args) as project:
                return _show(project)
        with Project.open(args.folder, sidecar=args.sidecar) as project:
            if args.rebuild:
                return _rebuild(args, project)
            learned = learn_new_labels(project, args)
            if learned is None:
                return 1
            print(f"learned {plural(learned, 'labelled image')}")
            return _show(project)
    except (AnnotatorError, ValueError) as error:
        print(f"annotator memory: {error}", file=sys.stderr)
        return 1
