"""adapt.py: a person whose electrodes are swapped is fixed by adaptation on one repetition per class;
the adapted checkpoint serves predict.py; the refusals; the prototype head is the nearest-prototype rule."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from semg_hht.adaptation.methods import (
    AdaptSettings,
    adapted_copy,
    linear_rule,
    output_layer,
    prototype_head,
    time_windows,
)
from semg_hht.adaptation.run import adapt
from semg_hht.errors import SemgError, run_guarded
from semg_hht.io import save_npz, write_csv
from semg_hht.models.loading import load_classifier
from semg_hht.training import train
from tests.config_keys import unread_in_run
from tests.helpers import CLASSES, TINY, compose_cfg, run_predict, swapped_people

SIZE = 32


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """Six people x 3 classes x 3 repetitions; S06's electrodes are swapped (helpers.swapped_people)."""
    return swapped_people(tmp_path_factory.mktemp("people"))


@pytest.fixture(scope="module")
def model(people, tmp_path_factory):
    """A tiny model trained on S01-S04 (S05 and S06 never seen)."""
    out = tmp_path_factory.mktemp("run")
    cfg = compose_cfg(
        [*TINY, f"paths.data_dir={people}", f"paths.output_dir={out}", "model.in_channels=2", "trainer.max_epochs=30",
         "model.head=linear", "model.pool=time", "optimizer.lr=3e-3",
         "data.label_source=manifest", "data.manifest=train.csv",
         "scheduler=warmup_cosine", "data.split=none", "report_on=last", "callbacks.model_checkpoint=null",
         "data.augment.enabled=false"]
    )  # fmt: skip
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


def refused(tmp_path, capsys, ckpt, data, *overrides, support="{repetition:[1]}") -> list[str]:
    """adapt.py run as the script runs it on ``data`` (support: each person's first repetition), expected
    to exit 1; the non-blank lines it wrote to stderr."""
    cfg = compose_cfg(
        [
            f"paths.output_dir={tmp_path / 'out'}",
            f"ckpt={ckpt}",
            f"input={data}",
            f"support={support}",
            *overrides,
        ],
        "adapt",
    )
    with pytest.raises(SystemExit):
        run_guarded(adapt, cfg)
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def run_adapt(tmp_path, *overrides):
    return adapt(compose_cfg([f"paths.output_dir={tmp_path / 'out'}", "support={repetition:[1]}", *overrides], "adapt"))


def test_the_default_recipe_gains_on_swapped_electrodes(people, model, tmp_path):
    """The default (a half-and-half prototype head, then 60 small steps of every weight) moves a model
    that is sure of the wrong class part of the way on this toy; the real recipe was chosen on real folds."""
    metrics = run_adapt(tmp_path, f"ckpt={model}", f"input={people / 'new.csv'}")
    swapped = metrics["people"]["S06"]
    assert swapped["k0"]["acc"] <= 0.5 and swapped["adapted"]["acc"] > swapped["k0"]["acc"]
    assert metrics["people"]["S05"]["adapted"]["acc"] >= metrics["people"]["S05"]["k0"]["acc"]


def test_swapped_electrodes_are_fixed_and_the_adapted_checkpoint_serves_predict(people, model, tmp_path, capsys):
    original = model.read_bytes()
    metrics = run_adapt(
        tmp_path, f"ckpt={model}", f"input={people / 'new.csv'}", "support={repetition:[1]}", "adapt.prototype_weight=1"
    )
    swapped = metrics["people"]["S06"]
    assert swapped["k0"]["acc"] <= 0.5  # a full reads as a half to a model of the others
    assert swapped["adapted"]["acc"] == 1.0  # one repetition of each class is enough to undo the swap
    assert metrics["people"]["S05"]["adapted"]["acc"] >= metrics["people"]["S05"]["k0"]["acc"]
    assert (swapped["n_support"], swapped["n_query"]) == (3, 6)
    assert model.read_bytes() == original  # the trained model is untouched
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {
        "S05.ckpt",
        "S06.ckpt",
        "predictions.csv",
        "metrics.json",
        "before_after.png",
    }
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("S06:")]
    assert lines and "-> 1.000" in lines[0]
    size = os.path.getsize(out / "S06.ckpt")
    assert abs(size - len(original)) < 0.05 * len(original) + 4096  # the weights replaced, nothing added but a record
    # predict.py serves the person's recordings with the adapted model: the same figure as adapt.py's
    run_predict(
        tmp_path / "predict",
        f"ckpt={out / 'S06.ckpt'}",
        f"input={people / 'new.csv'}",
        "filter={subject:[S06],repetition:[2,3]}",
    )
    scored = json.loads((tmp_path / "predict" / "out" / "metrics.json").read_text())
    assert scored["acc"] == 1.0
    adapted, trained = load_classifier(out / "S06.ckpt").hparams, load_classifier(model).hparams
    assert adapted == trained | {"channel_order": [1, 0]}  # the default search read S06's leads swapped


def test_the_channel_search_reads_swapped_electrodes_in_the_trained_order(people, model, tmp_path, capsys):
    """adapt.channel_order=search with no gradient step: S06's channels are read swapped (the model as
    trained then gets them right), S05's are kept; the order travels in the checkpoint to predict.py."""
    metrics = run_adapt(
        tmp_path, f"ckpt={model}", f"input={people / 'new.csv'}", "adapt.channel_order=search", "adapt.steps=0",
        "adapt.prototype_init=false",
    )  # fmt: skip
    swapped, kept = metrics["people"]["S06"], metrics["people"]["S05"]
    assert swapped["channel_order"] == [1, 0] and kept["channel_order"] is None
    assert swapped["k0"]["acc"] <= 0.5 and swapped["adapted"]["acc"] == 1.0
    assert kept["adapted"]["acc"] == kept["k0"]["acc"]  # nothing else changed: the same model, the same order
    printed = capsys.readouterr().out.splitlines()
    assert any(line.startswith("S06:") and "channels read as [1, 0]" in line for line in printed)
    out = tmp_path / "out"
    assert load_classifier(out / "S06.ckpt").model.encoder.channel_order == [1, 0]
    assert load_classifier(out / "S05.ckpt").model.encoder.channel_order is None
    run_predict(
        tmp_path / "predict", f"ckpt={out / 'S06.ckpt'}", f"input={people / 'new.csv'}", "filter={subject:[S06]}"
    )
    assert json.loads((tmp_path / "predict" / "out" / "metrics.json").read_text())["acc"] == 1.0


def test_a_channel_order_that_is_not_an_order_is_refused():
    from semg_hht.models.encoder import CNNEncoder

    with pytest.raises(SemgError, match=r"model.channel_order=\[0, 0\] is not an order of the 2 input channels"):
        CNNEncoder(2, 32, 4, 2, "batch", 0.2, False, 1, channel_order=[0, 0])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["support={repetition:[9]}"], "person S05 has no support row"),
        (["support={repetition:[1,2,3]}"], "no query row is left"),
        (["support=null"], "no support rows named"),
        (["adapt.method=nope"], "adapt.method"),
    ],
)
def test_refusals_are_one_line(people, model, tmp_path, capsys, overrides, expected):
    err = refused(tmp_path, capsys, model, people / "new.csv", *overrides)
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "out" / "S05.ckpt").exists()


def test_a_missing_class_is_named(people, model, tmp_path, capsys):
    err = refused(tmp_path, capsys, model, people / "new.csv", support="{repetition:[1],movement:[full,half]}")
    assert "have no ['invalid']" in err[0]


def test_matrices_of_another_size_are_refused(people, model, tmp_path, capsys):
    other = tmp_path / "small"
    other.mkdir()
    rows = []
    for rep in (1, 2):
        for movement in CLASSES:
            save_npz(other / f"{movement}{rep}.npz", hht=np.zeros((2, 16, 16), np.float32) + 0.1)
            rows.append({"file": f"{movement}{rep}.npz", "subject": "S09", "movement": movement, "repetition": rep})
    write_csv(other / "m.csv", rows, list(rows[0]))
    assert "unusable" in refused(tmp_path, capsys, model, other / "m.csv")[0]


def test_an_existing_output_is_not_overwritten(people, model, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "S05.ckpt").write_text("mine")
    assert "overwrite=true" in refused(tmp_path, capsys, model, people / "new.csv")[0]
    assert (tmp_path / "out" / "S05.ckpt").read_text() == "mine"


def test_the_prototype_head_is_the_nearest_prototype_rule(model):
    classifier = load_classifier(model).model
    x = torch.rand(12, 2, SIZE, SIZE)
    y = torch.arange(12) % 3
    prototype_head(classifier, x, y, weight=1.0)
    with torch.no_grad():
        features = classifier.embed(x)
        prototypes = torch.stack([features[y == c].mean(0) for c in range(3)])
        nearest = torch.cdist(features, prototypes).argmin(1)
        assert torch.equal(output_layer(classifier)(features).argmax(1), nearest)


@pytest.mark.parametrize("classes", [2, 3])
def test_the_lda_rule_is_a_linear_head_that_separates_its_rows(classes):
    torch.manual_seed(0)
    centres = 3.0 * torch.randn(classes, 16)
    y = torch.arange(40) % classes
    features = centres[y] + torch.randn(40, 16)
    for rule in ("nearest", "lda"):
        weight, bias = linear_rule(features, y, classes, rule)
        assert weight.shape == (classes, 16) and bias.shape == (classes,)
        assert torch.equal((features @ weight.T + bias).argmax(1), y)


def test_the_prototype_windows_read_every_half_hop_window(model, monkeypatch):
    """adapt.prototype_windows=0.5: the prototypes read the support rows whole and three windows of half
    their time axis (starts 0, 1/4 and 1/2); then the head is what the LDA rule gives on all of them."""
    assert [w.shape[-1] for w in time_windows(torch.rand(2, 2, SIZE, SIZE), 0.5)] == [SIZE // 2] * 3
    classifier = load_classifier(model).model
    widths = []
    embed = type(classifier).embed
    monkeypatch.setattr(type(classifier), "embed", lambda self, x: widths.append(x.shape[-1]) or embed(self, x))
    x, y = torch.rand(6, 2, SIZE, SIZE), torch.arange(6) % 3
    prototype_head(classifier, x, y, weight=1.0, rule="lda", windows=0.5)
    assert widths == [SIZE, SIZE // 2, SIZE // 2, SIZE // 2]
    with pytest.raises(SemgError, match="adapt.prototype_rule"):
        AdaptSettings("prototype", 0, 1e-3, 0.0, 4, 1, False, 1.0, False, prototype_rule="qda")


def test_the_original_model_is_left_as_it_was(model):
    classifier = load_classifier(model).model
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    settings = AdaptSettings("full", 5, 1e-2, 0.0, 4, 1, False, 0.5, True)
    adapted = adapted_copy(classifier, torch.rand(3, 2, SIZE, SIZE), torch.arange(3), settings, None, 0)
    assert all(torch.equal(before[k], v) for k, v in classifier.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in adapted.state_dict().items() if k.startswith("encoder."))
    assert not any(p.requires_grad for p in adapted.parameters())


def test_time_crops_feed_stretches_of_the_support_rows(model, monkeypatch):
    """adapt.time_crop=0.5: every step reads a stretch of 50-100 % of the support rows' time axis."""
    classifier = load_classifier(model).model
    widths = []
    forward = type(classifier).forward
    monkeypatch.setattr(type(classifier), "forward", lambda self, x: widths.append(x.shape[-1]) or forward(self, x))
    settings = AdaptSettings("full", 6, 1e-3, 0.0, 4, 1, False, 0.5, False, time_crop=0.5)
    adapted_copy(classifier, torch.rand(3, 2, SIZE, SIZE), torch.arange(3), settings, None, 0)
    assert len(widths) == 6 and min(widths) >= SIZE // 2 and min(widths) < SIZE
    with pytest.raises(SemgError, match="adapt.time_crop=1.0 must be in"):
        AdaptSettings("full", 6, 1e-3, 0.0, 4, 1, False, 0.5, False, time_crop=1.0)


def test_adapt_reads_every_key(people, model, tmp_path):
    cfg = compose_cfg([f"paths.output_dir={tmp_path / 'out'}", f"ckpt={model}", f"input={people / 'new.csv'}",
                       "filter={subject:[S06]}", "support={repetition:[1]}", "adapt.steps=2"], "adapt")  # fmt: skip
    assert unread_in_run(adapt, cfg) == []
