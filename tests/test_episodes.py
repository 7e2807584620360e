"""Few-shot episodes in training: data.episodes draws batches by person (EpisodeBatches), and
model.prototype_loss scores each person's recordings against one recording of each of their classes."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from semg_hht.data.loaders import EpisodeBatches
from semg_hht.errors import SemgError
from semg_hht.models.classifier import HHTClassifier
from semg_hht.training import train
from semg_hht.training.train import check_stages
from tests.helpers import TINY, compose_cfg, swapped_people


def rows_of(people: int, classes: int, repetitions: int) -> tuple[torch.Tensor, torch.Tensor]:
    grid = torch.cartesian_prod(torch.arange(people), torch.arange(classes), torch.arange(repetitions))
    return grid[:, 0], grid[:, 1]


def test_every_batch_is_people_times_classes_times_rows():
    people, y = rows_of(people=16, classes=5, repetitions=3)
    sampler = EpisodeBatches(people, y, (8, 2, 2), seed=0, epoch_of=lambda: 0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == math.ceil(len(y) / 32)
    for batch in batches:
        assert len(batch) == len(set(batch)) == 32
        pairs = Counter((int(people[i]), int(y[i])) for i in batch)
        assert set(pairs.values()) == {2}  # two recordings of each drawn class
        assert Counter(p for p, _ in pairs).most_common(1)[0][1] == 2  # two classes of each person
        assert len({p for p, _ in pairs}) == 8


def test_batches_follow_seed_and_epoch_alone_and_shrink_to_what_a_person_has():
    people, y = rows_of(people=3, classes=2, repetitions=1)
    epoch = [0]
    sampler = EpisodeBatches(people, y, (8, 3, 2), seed=5, epoch_of=lambda: epoch[0])
    first = list(sampler)
    assert first == list(EpisodeBatches(people, y, (8, 3, 2), seed=5, epoch_of=lambda: 0))
    assert sorted(first[0]) == list(range(6))  # every person, both classes, their one recording
    epoch[0] = 1
    assert [sorted(b) for b in sampler] == [sorted(b) for b in first] and list(sampler) != first


def classifier(prototype_loss: float = 1.0) -> HHTClassifier:
    return HHTClassifier(
        num_classes=2, class_names=["a", "b"], in_channels=1, input_size=8, base_channels=2, num_layers=1,
        norm="batch", residual=False, residual_from=6, leaky_slope=0.2, input_log_ref=None, head="linear",
        head_hidden=4, dropout=0.0, label_smoothing=0.0, optimizer={}, scheduler={}, prototype_loss=prototype_loss,
    )  # fmt: skip


def test_the_prototype_loss_is_cross_entropy_over_distances_within_each_person():
    model = classifier()
    # person 0: classes 0 and 1 at 0 and 3 on a line; person 1 the same classes swapped in place
    embedding = torch.tensor([[0.0], [0.0], [3.0], [3.0], [3.0], [3.0], [0.0], [0.0]])
    y = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    people = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    # every query row sits on its own class's prototype and 3 from the other: -log(1 / (1 + e^-9))
    expected = math.log1p(math.exp(-9.0))
    assert model.person_prototype_loss(embedding, y, people).item() == pytest.approx(expected, rel=1e-3)
    # the same embedding read as one person: each class sits in both places, so some row is always far
    # from its prototype (or as near to both)
    assert model.person_prototype_loss(embedding, y, torch.zeros(8, dtype=torch.long)).item() > 0.5


def test_a_batch_without_a_second_recording_of_any_class_has_no_prototype_loss():
    model = classifier()
    embedding = torch.randn(4, 3, requires_grad=True)
    loss = model.person_prototype_loss(embedding, torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert loss.item() == 0.0 and embedding.grad is not None


def test_the_prototype_loss_without_episodes_is_refused_before_training():
    cfg = compose_cfg(["model.prototype_loss=0.5"])
    with pytest.raises(SemgError, match="data.episodes.people"):
        check_stages(cfg)
    with pytest.raises(SemgError, match="mixup_alpha"):
        HHTClassifier(**{**dict(classifier().hparams), "mixup_alpha": 0.2})


def test_training_on_episodes_hands_every_row_its_person(tmp_path, monkeypatch):
    data = swapped_people(tmp_path / "people")
    seen: list[tuple[int, int]] = []
    step = HHTClassifier.training_step

    def recording(self, batch, batch_idx):
        _, y, people = batch
        seen.extend(zip(people.tolist(), y.tolist(), strict=True))
        return step(self, batch, batch_idx)

    monkeypatch.setattr(HHTClassifier, "training_step", recording)
    cfg = compose_cfg(
        [*TINY, f"paths.data_dir={data}", f"paths.output_dir={tmp_path / 'run'}", "model.in_channels=2",
         "data.label_source=manifest", "data.manifest=train.csv", "data.split=none", "report_on=last",
         "callbacks.model_checkpoint=null", "scheduler=warmup_cosine", "model.head=linear",
         "data.episodes.people=2", "data.episodes.classes=2", "data.episodes.rows=2", "model.prototype_loss=0.5"]
    )  # fmt: skip
    train(cfg)
    # 4 training people x 3 classes x 3 repetitions = 36 rows: 5 batches of 2 x 2 x 2 per epoch, 2 epochs
    assert len(seen) == 2 * 5 * 8
    assert all(n % 2 == 0 for n in Counter(seen).values())  # recordings come in pairs of a person's class
    assert {p for p, _ in seen} == {0, 1, 2, 3}


def test_episodes_of_recordings_without_a_subject_are_refused_in_one_line(train_cfg):
    """File-name labels carry no subject: batches cannot be drawn by person."""
    with pytest.raises(SemgError, match="no subject") as refused:
        train(train_cfg("data.episodes.people=2", "model.prototype_loss=0.5"))
    assert "data.episodes.people=0" in str(refused.value) and "\n" not in str(refused.value)
