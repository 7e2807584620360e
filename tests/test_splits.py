"""Splits: the seed's stratified split and subject-disjoint k-fold."""

import numpy as np
import pytest

from semg_hht.data.splits import group_split, stratified_split
from semg_hht.errors import SemgError

NAMES = ["full", "half", "invalid"]


def test_stratified_split_keeps_class_proportions_and_is_seeded():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    train, val = stratified_split(y, NAMES, 0.2, seed=42)
    assert len(val) == 20 and not set(train) & set(val) and len(train) + len(val) == 100
    assert np.bincount(y[val]).tolist() == [10, 6, 4]
    again, _ = stratified_split(y, NAMES, 0.2, seed=42)
    other, _ = stratified_split(y, NAMES, 0.2, seed=7)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_group_folds_are_subject_disjoint_and_cover_everyone_once():
    rng = np.random.default_rng(0)
    subjects = [f"S{i}" for i in range(10) for _ in range(12)]
    y = rng.integers(0, 3, size=len(subjects))
    seen = []
    for fold in range(5):
        train, val = group_split(y, subjects, NAMES, n_folds=5, fold=fold, seed=42)
        assert not {subjects[i] for i in train} & {subjects[i] for i in val}
        seen.extend(val.tolist())
    assert sorted(seen) == list(range(len(subjects)))


@pytest.mark.parametrize(
    ("y", "match"),
    [(np.zeros(10, int), "only one class"), (np.array([0] * 9 + [1]), "fewer than 2")],
)
def test_stratified_split_refuses_unsplittable_classes(y, match):
    with pytest.raises(SemgError, match=match):
        stratified_split(y, NAMES, 0.2, seed=0)


def test_group_split_needs_subjects_enough_of_them_and_a_valid_fold():
    y = np.array([0, 1] * 6)
    with pytest.raises(SemgError, match="needs a subject"):
        group_split(y, [None] * 12, NAMES, 3, 0, 0)
    with pytest.raises(SemgError, match="2 subjects cannot fill"):
        group_split(y, ["a", "b"] * 6, NAMES, 3, 0, 0)
    with pytest.raises(SemgError, match="data.fold=3"):
        group_split(y, list("abcdef") * 2, NAMES, 3, 3, 0)
