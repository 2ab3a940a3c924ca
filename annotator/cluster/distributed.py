"""Retraining on several processes or machines with torch.distributed and DDP.

Two ways in, one code path. ``annotator train FOLDER --nproc N`` launches N local workers with
torch's elastic launcher (:func:`launch_local`, the machinery behind ``torchrun``); ``torchrun
... -m annotator train FOLDER`` starts the workers itself. Either way each worker finds
``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``LOCAL_RANK`` in its environment (:func:`under_torchrun`),
joins the process group (:func:`start_rank`: gloo for data, NCCL for the gradients when every
rank has a GPU) and runs :func:`training.train` with a :class:`TorchCollective`: the images are
encoded and scored in shares, the head is fitted with DDP, rank 0 alone opens the project for
writing, saves the version and prints (:func:`open_rank_project`).

A rank that fails ends the run: the elastic agent stops the other workers as soon as one exits
with an error (they never wait on a dead peer for longer than the agent's poll), and every
collective has a timeout (:data:`TIMEOUT_ENV`) for peers that hang without exiting.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from annotator.errors import AnnotatorError
from training.parallel import Collective

#: Seconds a collective waits for the other ranks before failing (default 1800).
TIMEOUT_ENV = "ANNOTATOR_DIST_TIMEOUT"
_DEFAULT_TIMEOUT_S = 1800.0


class DistributedError(AnnotatorError):
    """Distributed training could not start or one of its processes failed."""


def under_torchrun() -> bool:
    """True inside a worker of torchrun (or of :func:`launch_local`): ``RANK`` is set, and
    ``WORLD_SIZE`` > 1 or the elastic agent started it (``TORCHELASTIC_RUN_ID``; one worker
    then still gets the restart checkpoint)."""
    if "RANK" not in os.environ:
        return False
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "TORCHELASTIC_RUN_ID" in os.environ


def _timeout() -> datetime.timedelta:
    seconds = float(os.environ.get(TIMEOUT_ENV, _DEFAULT_TIMEOUT_S))
    return datetime.timedelta(seconds=seconds)


class TorchCollective(Collective):
    """:class:`training.parallel.Collective` over an initialised default (gloo) process group;
    ``ddp_group`` carries the gradients (NCCL when ``device`` is a GPU)."""

    def __init__(self, ddp_group: Any, device: Any) -> None:
        import torch.distributed as dist

        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.ddp_group = ddp_group
        self.device = device

    def gather(self, local: dict[int, Any]) -> dict[int, Any]:
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, local)
        merged: dict[int, Any] = {}
        for part in parts:
            merged.update(part)
        return merged

    def broadcast(self, make: Callable[[], Any]) -> Any:
        import torch.distributed as dist

        box = [make() if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, value: float) -> float:
        return float(self.sum_array(np.asarray([value], np.float64))[0])

    def sum_array(self, array: np.ndarray) -> np.ndarray:
        import torch
        import torch.distributed as dist

        tensor = torch.from_numpy(np.ascontiguousarray(array).copy())
        dist.all_reduce(tensor)
        return tensor.numpy()

    def wrap(self, module: Any) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device] if self.device.type == "cuda" else None
        # The head's buffers (feature standardisation) are computed alike on every rank: no
        # need to send them with each forward pass.
        names = inspect.signature(DistributedDataParallel).parameters
        quiet = "forward_sync_buffers" if "forward_sync_buffers" in names else "broadcast_buffers"
        return DistributedDataParallel(
            module, device_ids=ids, process_group=self.ddp_group, **{quiet: False}
        )

    def same_everywhere(self, module: Any) -> Any:
        state = self.broadcast(lambda: {k: v.cpu() for k, v in module.state_dict().items()})
        module.load_state_dict(state)
        return module

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


def _all_have_gpus(wanted: str) -> bool:
    """True when the training device may be a GPU (``wanted`` "auto"/"cuda...") and every rank
    has one for its ``LOCAL_RANK`` (agreed over the gloo group)."""
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    mine = wanted.startswith(("auto", "cuda")) and torch.cuda.device_count() > local
    flag = torch.tensor([1 if mine else 0])
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def start_rank(device: str = "auto") -> TorchCollective:
    """Join the process group described by the environment (torchrun's variables) and return
    this rank's collective. ``device`` is the requested training device; the gradients go over
    NCCL on ``cuda:LOCAL_RANK`` when every rank has a GPU, else over gloo on the CPU. CPU threads
    are shared out between the ranks of this machine."""
    import torch
    import torch.distributed as dist

    try:
        _join_group()
    except (RuntimeError, ValueError) as error:
        raise DistributedError(
            f"Could not join the other training processes ({error}). Check MASTER_ADDR and "
            "MASTER_PORT, and that every machine can reach rank 0."
        ) from error
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if _all_have_gpus(device):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        group = dist.new_group(backend="nccl", timeout=_timeout())
        return TorchCollective(group, torch.device("cuda", local))
    return TorchCollective(None, torch.device("cpu"))


def _join_group() -> None:
    """``init_process_group("gloo")`` from torchrun's environment, its keys under this
    attempt's prefix: after a restart, no rank may find the address a dead rank of the failed
    attempt left in the agent's store (seen here: "connection refused" on restart)."""
    import torch.distributed as dist
    from torch.distributed.rendezvous import rendezvous

    store, rank, world_size = next(rendezvous("env://", timeout=_timeout()))
    store = dist.PrefixStore(f"annotator/attempt-{restart_count()}", store)
    dist.init_process_group(
        "gloo", store=store, rank=rank, world_size=world_size, timeout=_timeout()
    )


def training_device(collective: TorchCollective) -> str:
    """The ``TrainConfig.device`` this rank uses: its GPU, or the CPU when not every rank has
    one (all ranks must agree for the gradients to meet over one backend)."""
    return str(collective.device)


def stop_rank() -> None:
    """Leave the process group (safe when none was joined)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def open_rank_project(folder: str, sidecar: str | None, collective: Collective) -> Iterator[Any]:
    """The project as this rank may use it: writable on rank 0 (which takes the project's
    lock), read-only on the others, opened only after rank 0 has (its open may finish moves
    and reconcile the store)."""
    from annotator.project import Project

    project = Project.open(folder, sidecar=sidecar) if collective.is_main else None
    collective.barrier()
    if project is None:
        project = Project.open(folder, sidecar=sidecar, read_only=True)
    with project:
        yield project


def _rank_main(run: Callable[[Any], int], args: Any) -> None:
    """A worker of :func:`launch_local`: the command with torchrun's environment set."""
    code = run(args)
    if code:
        raise SystemExit(code)


def launch_local(run: Callable[[Any], int], args: Any, nproc: int, max_restarts: int = 0) -> int:
    """Run ``run(args)`` in ``nproc`` local workers under torch's elastic agent (what ``torchrun
    --standalone --nproc-per-node N`` does) and wait. A worker that fails stops the others;
    with ``max_restarts`` the agent starts all of them again (they resume from the training
    checkpoint). Returns 0, or 1 after printing which rank failed first."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"annotator-{uuid.uuid4().hex}",
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=max_restarts,
        monitor_interval=0.2, start_method="spawn",
    )  # fmt: skip
    # The workers are the processes: they must not launch (or restart) any of their own.
    worker_args = type(args)(**{**vars(args), "nproc": 1, "max_restarts": 0})
    try:
        with _quiet_agent():
            elastic_launch(config, _rank_main)(run, worker_args)
    except ChildFailedError as error:
        print(f"annotator train: {failure_message(error, nproc)}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SignalException):
        print("annotator train: cancelled; the previous version stays active.", file=sys.stderr)
        return 130
    return 0


@contextlib.contextmanager
def _quiet_agent() -> Iterator[None]:
    """The agent's own log lines (a worker's traceback, again) stay out of the user's way: each
    worker prints its error, and :func:`failure_message` says which one failed first."""
    import logging

    loggers = [logging.getLogger(n) for n in ("torch.distributed", "torch.multiprocessing")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def failure_message(error: Any, nproc: int) -> str:
    """One line for a ``ChildFailedError``: the rank that failed first and its exit code."""
    rank, failure = error.get_first_failure()
    return (
        f"training process {rank} of {nproc} failed (exit code {failure.exitcode}; its message "
        "is above), so the run stopped and the other processes were ended; the active model "
        "version is unchanged."
    )


def usage_problem(nproc: int, listing: bool, max_restarts: int = 0) -> str | None:
    """What is wrong with asking for ``nproc`` processes (restarted up to ``max_restarts``
    times) here (None: nothing)."""
    if nproc < 1:
        return f"--nproc must be at least 1, got {nproc}"
    if max_restarts < 0:
        return f"--max-restarts must be at least 0, got {max_restarts}"
    if under_torchrun() and (nproc != 1 or max_restarts):
        return (
            "--nproc and --max-restarts start and restart processes themselves; under torchrun "
            "leave them out (torchrun's --nproc-per-node, --nnodes and --max-restarts do that)."
        )
    if listing:
        return "--list and --use run in one process: leave out --nproc and torchrun."
    return None


def run_rank(
    args: Any,
    config: Any,
    train: Callable[[Any, Any, Any, Any], Any],
    show: Callable[[Any, bool], None],
) -> int:
    """One rank of ``annotator train``: join the group, open the project as this rank may,
    ``train(args, project, config, collective)``; rank 0 ``show``s the result. Errors are
    printed with the rank that met them; the return value is the exit code."""
    import traceback

    where = f"annotator train (process {os.environ.get('RANK')} of {os.environ.get('WORLD_SIZE')})"
    try:
        collective = start_rank(config.device)
        config.device = training_device(collective)
        with open_rank_project(args.folder, args.sidecar, collective) as project:
            checkpoint = _checkpoint(project, collective)
            result = train(args, project, config, collective, checkpoint)
            _finish(checkpoint)
    except AnnotatorError as error:
        print(f"{where}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{where}: cancelled; the previous version stays active.", file=sys.stderr)
        return 130
    except Exception as error:  # any failure must end this rank with a message, never hang
        if _peer_lost(error):
            print(f"{where}: stopped: another training process ended ({error})", file=sys.stderr)
        else:
            traceback.print_exc()
            print(f"{where}: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        stop_rank()
    if collective.is_main:
        show(result, args.json)
    return 0


def restart_count() -> int:
    """How many times the elastic agent has restarted this run's workers (0: first attempt)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def _checkpoint(project: Any, collective: Collective) -> Any:
    """The run's checkpoint in the project's sidecar (shared storage); resumable on restarts."""
    from training.checkpoint import FOLDER, TrainCheckpoint

    return TrainCheckpoint(project.sidecar_path(FOLDER), collective.is_main, restart_count() > 0)


def _finish(checkpoint: Any) -> None:
    """After a finished run: say what was resumed (rank 0) and remove the checkpoint."""
    if checkpoint.writer and checkpoint.resumed:
        attempt = restart_count()
        print(
            f"annotator train: restart {attempt} resumed from the checkpoint: "
            f"{'; '.join(checkpoint.resumed)}",
            file=sys.stderr,
        )
    checkpoint.clear()


def _peer_lost(error: Exception) -> bool:
    """True for a collective that failed because another rank went away or timed out (its
    own message says why; this rank's traceback would only repeat the collective's)."""
    import torch.distributed as dist

    text = str(error).lower()
    lost = ("connection closed by peer", "connection reset", "timed out", "broken pipe")
    return isinstance(error, dist.DistError) or any(word in text for word in lost)
