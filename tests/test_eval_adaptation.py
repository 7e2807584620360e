"""evaluate.py's adaptation rows: every choice of k repetitions, the CNN adapted per fold on its own
validation people, and the classic twins (the person alone, pooled) on exactly the same splits."""

from __future__ import annotations

import numpy as np
import pytest

from semg_hht.classic.recordings import FeatureSet
from semg_hht.errors import SemgError
from semg_hht.evaluation.adaptation import (
    Context,
    Predictions,
    adaptation_rows,
    classic_episodes,
    either_right,
    episodes,
    mixed,
    row_settings,
)
from semg_hht.evaluation.run import check_inputs
from semg_hht.io import write_text
from semg_hht.training import train
from tests.helpers import CLASSES, TINY, compose_cfg, swapped_people


def test_every_choice_of_k_repetitions_is_one_episode():
    values = ["1", "2", "3", "1", "2", "3"] * 2
    subjects = ["A"] * 6 + ["B"] * 6
    got = list(episodes(values, subjects, ["A", "B"], [1, 2]))
    assert [e for e in got if e[0] == 1 and e[1] == "A"] == [(1, "A", ("1",)), (1, "A", ("2",)), (1, "A", ("3",))]
    assert [e[2] for e in got if e[0] == 2 and e[1] == "B"] == [("1", "2"), ("1", "3"), ("2", "3")]
    assert len(got) == 12


def features(people: list[str], swapped_person: str) -> tuple[FeatureSet, list[str]]:
    """people x 3 classes x 3 repetitions, 4 windows each: class c lifts feature c; for the swapped
    person classes 0 and 1 trade places (as swapped electrodes do)."""
    rng = np.random.default_rng(0)
    x, y, subjects, units, paths, values = [], [], [], [], [], []
    for person in people:
        for rep in ("1", "2", "3"):
            for c in range(3):
                shown = {0: 1, 1: 0}.get(c, c) if person == swapped_person else c
                for _ in range(4):
                    x.append(2.0 * np.eye(3)[shown] + 0.3 * rng.standard_normal(3))
                    y.append(c)
                    subjects.append(person)
                    units.append(len(paths))
                paths.append(f"{person}_{rep}_{c}")
                values.append(rep)
    ids = [f"{p.split('_')[0]}_{CLASSES[int(p[-1])]}_{p.split('_')[1]}.npz" for p in paths]  # swapped_people's files
    fs = FeatureSet(np.array(x), np.array(y), list(CLASSES), subjects, paths, ["a", "b", "c"], np.array(units), ids)
    return fs, values


def test_the_person_alone_learns_swapped_electrodes_and_pooling_drowns_them():
    fs, values = features(["S1", "S2", "S3", "S4"], "S4")
    kwargs = {"ks": [1], "method": "lda", "params": {}, "seed": 0}
    alone = classic_episodes(fs, values, {"S1", "S2", "S3"}, ["S4"], pooled=False, **kwargs)[1]
    pooled = classic_episodes(fs, values, {"S1", "S2", "S3"}, ["S4"], pooled=True, **kwargs)[1]
    assert len(alone.y) == 3 * 6  # 3 choices x 6 query recordings (windows voted into one)
    assert np.mean(np.array(alone.y) == np.array(alone.pred)) == 1.0
    assert np.mean(np.array(pooled.y) == np.array(pooled.pred)) < 0.8


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 3-fold train.py sweep on the swapped-electrode people (S06 swapped), as evaluate.py reads one."""
    people = swapped_people(tmp_path_factory.mktemp("people"))
    root = tmp_path_factory.mktemp("sweep")
    for fold in range(3):
        job = root / str(fold)
        train(
            compose_cfg(
                [*TINY, f"paths.data_dir={people}", f"paths.output_dir={job}", "model.in_channels=2",
                 "model.head=linear", "model.pool=time", "optimizer.lr=3e-3", "trainer.max_epochs=20",
                 "data.label_source=manifest", "data.manifest=manifest.csv", "data.split=group", "data.n_folds=3",
                 f"data.fold={fold}", "report_on=last", "data.augment.enabled=false", "scheduler=warmup_cosine"]
            )
        )  # fmt: skip
        write_text(job / ".hydra" / "overrides.yaml", f"- data.fold={fold}\n")
        write_text(job / "metrics.json", '{"val/acc": 0}')  # collect_jobs: a finished job
    return root


def sweep_rows(sweep, overrides: list[str]) -> tuple[list[dict], list[dict]]:
    """evaluate.py's adaptation rows (table rows, folds.csv rows) of the sweep on its six people, S06 swapped."""
    cfg = compose_cfg(overrides, "evaluate")
    fs, values = features([f"S{s:02d}" for s in range(1, 7)], "S06")
    return adaptation_rows(
        Context("movement", fs, values, None, [], " on windows"), row_settings(cfg),
        [{"target": "movement", "label": "CNN", "dir": str(sweep), "adapt": True}],
    )  # fmt: skip


def test_the_cnn_and_the_classic_rows_share_folds_people_and_splits(sweep):
    rows, folds = sweep_rows(sweep, ["adaptation.ks=[1,2]", "adaptation.methods=[lda]", "adapt.steps=20"])
    labels = [r["method"] for r in rows]
    assert labels[:3] == [
        "CNN, k=0: unadapted, on the k=1 query rows",
        "CNN, adapted (full), k=1",
        "CNN, adapted (full), k=2",
    ]
    assert "classic features + LDA on windows, the person alone, k=1" in labels
    assert "classic features + LDA on windows, pooled with the training people, k=2" in labels
    adaptive = "classic features + adaptive LDA on windows (the person's class means, the training people's covariance)"
    assert f"{adaptive}, k=1" in labels and f"{adaptive}, k=2" in labels
    assert all(r["n_folds"] == 3 for r in rows)
    cnn = {f["fold"]: f["val_subjects"] for f in folds if f["method"] == labels[1]}
    for label in (labels[-1], f"{adaptive}, k=1"):
        classic = {f["fold"]: f["val_subjects"] for f in folds if f["method"] == label}
        assert cnn == classic and len(cnn) == 3  # the same people in every fold, on both sides
    assert sorted(" ".join(cnn.values()).split()) == [f"S{s:02d}" for s in range(1, 7)]  # each person once
    k0, k1 = rows[0], rows[1]
    assert k1["acc_mean"] >= k0["acc_mean"]  # the swapped person's fold gains most


def test_the_placement_stress_test_swaps_every_person_and_the_channel_search_undoes_it(sweep):
    """adaptation.channel_order=[1,0] reads every validation person's leads swapped: the unadapted model
    loses them, the channel search alone (no gradient step) reads them back in the trained order."""
    plain = ["adapt.steps=0", "adapt.prototype_init=false"]
    rows, _ = sweep_rows(
        sweep,
        ["adaptation.ks=[1]", "adaptation.methods=[]", "adaptation.pooled_methods=[]", "adaptation.channel_order=[1,0]",
         "adaptation.compare={keep:{channel_order:keep}}", *plain],
    )  # fmt: skip
    acc = {r["method"]: r["acc_mean"] for r in rows}
    swapped = "CNN, channels read as [1, 0]"
    named = ("k=0: unadapted, on the k=1 query rows", "adapted (full), k=1", "adapted (keep), k=1")
    k0, search, keep = (acc[f"{swapped}, {what}"] for what in named)
    assert keep == k0  # no step, no search: the model as trained, on swapped leads
    assert search >= k0 + 0.3  # five of six people read back in their trained order


def test_a_person_alone_lda_on_one_whole_recording_per_class_is_refused_before_any_work(tmp_path):
    """window.enabled=false with an adapt sweep: k=1 would fit LDA on one row per class."""
    raw = tmp_path / "manifest.csv"
    raw.write_text("file,subject,movement\n")
    adapting = [
        f"raw={raw}",
        "experiments=[muscletracker_movement]",
        f"sweeps=[{{target:movement,label:CNN,dir:{tmp_path},adapt:true}}]",
    ]
    base = ["window.enabled=false", "adaptation.methods=[lda]", "adaptation.ks=[1,2]"]
    with pytest.raises(SemgError, match="window.enabled=true"):
        check_inputs(compose_cfg([*base, *adapting], "evaluate"))
    for fine in (["adaptation.ks=[2]"], ["adaptation.methods=[svm]"], ["window.enabled=true"]):
        check_inputs(compose_cfg([*base, *fine, *adapting], "evaluate"))
    check_inputs(compose_cfg([*base, "experiments=[]"], "evaluate"))  # no adaptation rows: nothing to refuse
    mixing = [*adapting, "adaptation.mixture.methods=[svm]"]
    with pytest.raises(SemgError, match="hht_dir"):  # the two sides are matched by make_hht's recording ids
        check_inputs(compose_cfg(mixing, "evaluate"))
    check_inputs(compose_cfg([*mixing, f"hht_dir={tmp_path}"], "evaluate"))
    with pytest.raises(SemgError, match="not a classifier"):
        check_inputs(compose_cfg([*mixing, f"hht_dir={tmp_path}", "adaptation.mixture.methods=[knn]"], "evaluate"))


def test_the_mixture_at_cnn_weight_one_scores_as_the_adapted_cnn_on_every_fold(sweep):
    """adaptation.mixture: the two sides matched recording by recording, so at cnn_weight=1 every fold's
    figure is the adapted CNN's."""
    rows, folds = sweep_rows(
        sweep,
        ["adaptation.ks=[1]", "adaptation.methods=[]", "adaptation.pooled_methods=[]", "adapt.steps=20",
         "adaptation.mixture.methods=[lda]", "adaptation.mixture.cnn_weight=1.0"],
    )  # fmt: skip
    labels = [r["method"] for r in rows]
    assert labels[2] == "CNN, adapted (full) + classic LDA of the person alone on windows, k=1"
    assert labels[3] == (
        "CNN, adapted (full) or classic LDA of the person alone on windows: either right "
        "(the ceiling of any mixture of the two, not a method), k=1"
    )
    per_fold = {label: [f["acc"] for f in folds if f["method"] == label] for label in labels[1:4]}
    assert per_fold[labels[1]] == per_fold[labels[2]] and len(per_fold[labels[1]]) == 3
    # no mixture scores above the ceiling, fold by fold
    assert all(c >= m for c, m in zip(per_fold[labels[3]], per_fold[labels[2]], strict=True))
    ceiling_off = sweep_rows(
        sweep,
        ["adaptation.ks=[1]", "adaptation.methods=[]", "adaptation.pooled_methods=[]", "adapt.steps=20",
         "adaptation.mixture.methods=[lda]", "adaptation.mixture.ceiling=false"],
    )[0]  # fmt: skip
    assert [r["method"] for r in ceiling_off if "either right" not in r["method"]] == labels[:3] + labels[4:]
    assert len(ceiling_off) == len(labels) - 1


def test_mixed_weighs_the_two_sides_per_recording_and_refuses_unmatched_ones():
    cnn, classic = Predictions(), Predictions()
    cnn.keep("A", ("1",), ["r1", "r2"], np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    classic.keep("A", ("1",), ["r2", "r1", "r1"], np.array([1, 0, 0]), np.array([[0.0, 1.0], [0.7, 0.3], [0.9, 0.1]]))
    assert mixed(cnn, classic, 1.0).pred == [0, 0]
    assert mixed(cnn, classic, 0.0).pred == [0, 1]  # r1's two windows averaged, r2 read by its id
    assert mixed(cnn, classic, 0.5).pred == [0, 1]  # r2: 0.4 vs 0.6
    classic.keep("A", ("1",), ["r1", "r3"], np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(SemgError, match="recording 'r2' is on one side only"):
        mixed(cnn, classic, 0.5)
    classic.probs = {("A", ("2",)): classic.probs["A", ("1",)]}
    with pytest.raises(SemgError, match=r"repetitions \['1'\] are on one side only"):
        mixed(cnn, classic, 0.5)


def test_either_right_counts_a_recording_either_side_gets_right_and_no_weighting_beats_it():
    cnn, classic = Predictions(), Predictions()
    y = np.array([0, 1, 2, 2])
    ids = ["r1", "r2", "r3", "r4"]
    cnn.keep("A", ("1",), ids, y, np.array([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]]))
    classic.keep("A", ("1",), ids, y, np.array([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [0.6, 0.3, 0.1]]))
    ceiling = either_right(cnn, classic)
    assert ceiling.pred == [0, 1, 2, 0]  # r1 by the CNN, r2 by the classic side, r3 by the CNN, r4 by neither
    assert ceiling.y == [0, 1, 2, 2]
    right = lambda p: np.mean(np.array(p.pred) == np.array(p.y))  # noqa: E731
    assert all(right(mixed(cnn, classic, w)) <= right(ceiling) for w in np.linspace(0, 1, 11))
