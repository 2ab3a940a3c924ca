"""The seam between the retraining job and several processes (torch.distributed, DDP).

The job (:func:`training.train`) asks a :class:`Collective` for four things: which images this
process encodes (:meth:`Collective.shard`), everybody's per-image results (:meth:`Collective.gather`),
sums over processes (:meth:`Collective.sum`, :meth:`Collective.sum_array`) and a model whose
gradients are averaged (:meth:`Collective.wrap`). :data:`SINGLE` is the one-process answer to all
of them; ``annotator.cluster.distributed`` implements them over a torch process group. Nothing here
imports ``torch.distributed``, so the one-process job never pays for it.

Results do not depend on the number of processes by construction: per-image work draws from a
random generator seeded by (seed, image position) (:func:`image_rng`), gathered results are put
back in image order, and every process computes the loss of its share of the *same* global batch
scaled so that averaging the gradients over processes gives the one-process batch gradient
(:meth:`Collective.batch_share`). What remains is float rounding of sums in another order.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import numpy as np

from annotator.progress import Progress

T = TypeVar("T")


class Collective:
    """One process: identity answers. Subclasses talk to the other processes."""

    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes the version and prints (rank 0)."""
        return self.rank == 0

    def shard(self, count: int) -> list[int]:
        """Positions ``0..count-1`` this process works on (strided: rank, rank + world, ...)."""
        return list(range(self.rank, count, self.world_size))

    def gather(self, local: dict[int, Any]) -> dict[int, Any]:
        """Union of every process's ``{position: result}`` (results must pickle)."""
        return dict(local)

    def broadcast(self, make: Callable[[], T]) -> T:
        """``make()`` run on rank 0, its value handed to every process."""
        return make()

    def sum(self, value: float) -> float:
        """``value`` summed over processes (float64)."""
        return float(value)

    def sum_array(self, array: np.ndarray) -> np.ndarray:
        """``array`` (any numeric dtype and shape) summed element-wise over processes; int64
        arrays sum exactly."""
        return array

    def wrap(self, module: Any) -> Any:
        """``module`` whose backward averages gradients over processes (DDP); here itself."""
        return module

    def batch_share(self, batch_size: int) -> slice:
        """This process's contiguous part of a global batch of ``batch_size`` positions (the
        parts of all processes tile the batch, sizes differing by at most one)."""
        bounds = np.linspace(0, batch_size, self.world_size + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def same_everywhere(self, module: Any) -> Any:
        """Give every process rank 0's parameters and buffers of ``module`` (in place)."""
        return module


SINGLE = Collective()


def image_rng(seed: int, stream: int, position: int) -> np.random.Generator:
    """The random generator of one image's work: the same on whichever process does it.
    ``stream`` tells the uses apart (human samples, pseudo-labels of a round, generative maps)."""
    return np.random.default_rng([seed, stream, position])


def map_images(
    collective: Collective,
    relpaths: Sequence[str],
    work: Callable[[int, str], Any],
    describe: str,
    data: dict[str, Any],
    check: Callable[[], None],
) -> Generator[Progress, None, list[Any]]:
    """``work(position, relpath)`` for every image, shared out between processes; yields one
    :class:`Progress` per image of this process's share (message ``f"{describe} {relpath}"``,
    ``data``); returns every result in ``relpaths`` order, on every process. ``check`` runs
    before each image (raises to cancel)."""
    mine = collective.shard(len(relpaths))
    local = {}
    for done, position in enumerate(mine, start=1):
        check()
        local[position] = work(position, relpaths[position])
        yield Progress(done, len(mine), f"{describe} {relpaths[position]}", dict(data))
    merged = collective.gather(local)
    return [merged[position] for position in range(len(relpaths))]
