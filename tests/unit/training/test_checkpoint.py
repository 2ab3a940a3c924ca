"""The restart checkpoint (``training.checkpoint``) and the process seam (``training.parallel``),
in one process: a fit resumed from its checkpoint equals the uninterrupted fit, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from annotator.errors import JobCancelled
from annotator.progress import run_job
from training.cagnet.data import ImageMaps
from training.checkpoint import RoundCheckpoint, TrainCheckpoint
from training.fit import FitSettings, SampleSet, fit_head
from training.head import HeadSpec
from training.parallel import SINGLE, Collective, image_rng

SETTINGS = FitSettings(steps=40, batch_size=64, learning_rate=1e-2, seed=3)


def _samples() -> SampleSet:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 500)
    filters = (rng.normal(size=(500, 5)) + labels[:, None]).astype(np.float32)
    return SampleSet(filters, None, labels.astype(np.int64), np.ones(500, np.float32))


def _fit(checkpoint=None, stop_after: int | None = None):
    steps = []

    def should_stop() -> bool:
        return stop_after is not None and len(steps) >= stop_after

    job = fit_head(
        HeadSpec(5, 0, 16, (0, 1, 2)), _samples(), SETTINGS, should_stop, torch.device("cpu"),
        None, SINGLE, checkpoint,
    )  # fmt: skip
    return run_job(job, lambda p: steps.append(p.data["step"]))


def test_a_resumed_fit_equals_the_uninterrupted_fit(tmp_path) -> None:
    reference = _fit()
    first = TrainCheckpoint(tmp_path / "ckpt", writer=True, resume=False, every=10)
    first.start("run-a")
    with pytest.raises(JobCancelled):  # reports every step: stops after step 25
        _fit(RoundCheckpoint(first, 0, SINGLE), stop_after=25)
    again = TrainCheckpoint(tmp_path / "ckpt", writer=True, resume=True, every=10)
    again.start("run-a")
    resumed = _fit(RoundCheckpoint(again, 0, SINGLE))
    assert again.resumed == ["round 1: fit from step 20"]
    for key, tensor in reference.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[key]), key


def test_another_run_or_a_first_attempt_never_resumes(tmp_path) -> None:
    first = TrainCheckpoint(tmp_path / "ckpt", writer=True, resume=False, every=10)
    first.start("run-a")
    first.save_version(0, "v0007")
    other = TrainCheckpoint(tmp_path / "ckpt", writer=True, resume=True)
    other.start("run-b")  # another run's files: cleared
    assert other.version(0) is None and other.resumed == []
    fresh = TrainCheckpoint(tmp_path / "ckpt", writer=True, resume=False)
    fresh.start("run-b")
    assert fresh.version(0) is None


def test_encoding_results_round_trip_as_tensors_only(tmp_path) -> None:
    rng = np.random.default_rng(1)
    samples = SampleSet(
        rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32),
        np.arange(4, dtype=np.int64), np.full(4, 0.5, np.float32),
    )  # fmt: skip
    maps = ImageMaps(*(rng.normal(size=(2, 2)).astype(np.float16) for _ in range(7)))
    writer = TrainCheckpoint(tmp_path / "ckpt", writer=True, resume=False)
    writer.start("k")
    writer.save_images("human", [None, (samples, maps), (samples, None)])
    reader = TrainCheckpoint(tmp_path / "ckpt", writer=False, resume=True)
    reader.start("k")
    back = reader.images("human")  # torch.load(weights_only=True) inside
    assert back[0] is None and back[2][1] is None
    assert isinstance(back[1][0], SampleSet) and isinstance(back[1][1], ImageMaps)
    for name in ("filters", "clip", "labels", "weights"):
        assert np.array_equal(getattr(back[1][0], name), getattr(samples, name))
    assert back[1][1].pixel_clip.dtype == np.float16
    reader.save_images("other", [])  # not the writer: nothing written
    assert not (tmp_path / "ckpt" / "images-other.pt").exists()


class _Rank(Collective):
    def __init__(self, rank: int, world_size: int) -> None:
        self.rank, self.world_size = rank, world_size


@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("batch", [1, 4, 2048])
def test_shares_tile_the_batch_and_the_images(world: int, batch: int) -> None:
    ranks = [_Rank(r, world) for r in range(world)]
    shares = [rank.batch_share(batch) for rank in ranks]
    assert [s.start for s in shares[1:]] == [s.stop for s in shares[:-1]]
    assert shares[0].start == 0 and shares[-1].stop == batch
    assert max(s.stop - s.start for s in shares) - min(s.stop - s.start for s in shares) <= 1
    images = sorted(i for rank in ranks for i in rank.shard(7))
    assert images == list(range(7))


def test_an_images_random_stream_does_not_depend_on_who_draws_it() -> None:
    a = image_rng(0, 1, 5).integers(0, 1000, 8)
    assert np.array_equal(a, image_rng(0, 1, 5).integers(0, 1000, 8))
    assert not np.array_equal(a, image_rng(0, 1, 6).integers(0, 1000, 8))
    assert not np.array_equal(a, image_rng(0, 2, 5).integers(0, 1000, 8))
