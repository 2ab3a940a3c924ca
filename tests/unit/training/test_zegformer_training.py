"""Retraining with the zegformer proposer trains a segment decoder that beats unsupervised
grouping on human segments, stores it in the version, and proposals then use it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from annotator.engine import EngineConfig, create_segmenter
from annotator.engine.testing import TINY_MODEL
from annotator.progress import run_job
from training import TrainConfig, load_active_adapter, rollback, train
from training.dataset import class_prompts
from training.zegformer import best_match_ious, read_report
from training.zegformer.losses import pairwise_mask_cost, segment_loss
from training.zegformer.model import TrainedSegments

FAST = {"rounds": 1, "steps": 60, "samples_per_class": 400, "batch_size": 1024}


@pytest.fixture(scope="module")
def zegformer_segmenter():
    config = EngineConfig(
        model=TINY_MODEL, pretrained=None, short_side=96, device="cpu", proposer="zegformer",
        segments=8,
    )  # fmt: skip
    return create_segmenter(config)


def test_best_match_iou_by_hand() -> None:
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    predicted = np.array([[0, 0, 0, 1], [0, 0, 0, 1]])
    # segment 0: IoU with prediction 0 = 4/6; segment 1: IoU with prediction 1 = 2/4
    np.testing.assert_allclose(best_match_ious(predicted, truth), [4 / 6, 2 / 4])
    truth[0, 0] = -1  # unlabelled pixels count for neither side
    np.testing.assert_allclose(best_match_ious(predicted, truth), [3 / 5, 2 / 4])


def test_matching_prefers_the_right_query_and_loss_is_lower_for_it() -> None:
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    good = torch.tensor([[9.0, 9.0, -9.0, -9.0], [-9.0, -9.0, 9.0, 9.0]])
    valid = torch.ones(4)
    cost = pairwise_mask_cost(good, targets, valid)
    assert cost[0, 0] < cost[0, 1] and cost[1, 1] < cost[1, 0]
    swapped = segment_loss(good.flip(0), None, targets, torch.tensor([0, 1]), valid)
    assert float(swapped) == pytest.approx(
        float(segment_loss(good, None, targets, torch.tensor([0, 1]), valid))
    )
    both = torch.full((2, 4), 9.0)  # both queries cover everything: no matching can fix it
    bad = segment_loss(both, None, targets, torch.tensor([0, 1]), valid)
    assert float(bad) > float(swapped) + 1.0


def test_retraining_trains_a_decoder_that_beats_grouping(
    labelled_project, zegformer_segmenter
) -> None:
    events = []
    result = run_job(
        train(labelled_project, zegformer_segmenter, TrainConfig(**FAST)), events.append
    )
    report = read_report(labelled_project.sidecar / "models" / result.version.id)
    print(f"mean best-match IoU: grouping {report['before']:.3f} -> decoder {report['after']:.3f}")
    assert report["images"] >= 1
    assert report["after"] > report["before"] + 0.05
    phases = [e.data["phase"] for e in events if isinstance(e.data, dict)]
    assert "segments" in phases
    # the proposal now comes from the decoder: fused learned + CLIP scores, seen classes known
    adapter = load_active_adapter(labelled_project)
    assert isinstance(adapter.segment_model, TrainedSegments)
    _, prompts = class_prompts(labelled_project)
    zegformer_segmenter.set_image(labelled_project.load_image("img012.png"))
    proposal = zegformer_segmenter.predict(prompts, adapter=adapter)
    assert proposal.segments.variant == "fused"
    assert proposal.segments.seen.any()
    assert proposal.label_map.shape == (96, 96)
    rollback(labelled_project)
    assert load_active_adapter(labelled_project) is None


def test_dense_proposer_trains_no_decoder(labelled_project) -> None:
    segmenter = create_segmenter(
        EngineConfig(model=TINY_MODEL, pretrained=None, short_side=96, device="cpu")
    )
    result = run_job(train(labelled_project, segmenter, TrainConfig(**{**FAST, "steps": 20})))
    assert read_report(labelled_project.sidecar / "models" / result.version.id) is None
    assert not hasattr(load_active_adapter(labelled_project), "segment_model")


def test_without_clip_weights_the_decoder_still_segments(
    labelled_project, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    monkeypatch.setenv("ANNOTATOR_CACHE_DIR", str(tmp_path / "empty-cache"))
    config = EngineConfig(
        download=False, short_side=96, device="cpu", proposer="zegformer", segments=6
    )
    segmenter = create_segmenter(config, allow_missing_weights=True)
    assert not segmenter.available
    result = run_job(train(labelled_project, segmenter, TrainConfig(**{**FAST, "steps": 30})))
    report = read_report(labelled_project.sidecar / "models" / result.version.id)
    assert report["after"] > report["before"]
    adapter = load_active_adapter(labelled_project)
    assert adapter.segment_model.decoder.segment_embed is None  # no text: masks only
    _, prompts = class_prompts(labelled_project)
    segmenter.set_image(labelled_project.load_image("img012.png"))
    proposal = segmenter.predict(prompts, adapter=adapter)
    assert proposal.segments.variant == "seg"  # named by the trained head's pooled scores
    assert proposal.label_map.shape == (96, 96)
