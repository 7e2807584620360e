"""make_hht.py's preview.png: drawn after a conversion, from the outputs' own values; skipped when
nothing is labelled; redrawn on rerun; its settings never change which matrices are reused."""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest

from semg_hht.conversion import convert
from semg_hht.errors import SemgError
from semg_hht.hht.preview import read_preview
from semg_hht.hht.settings import PreviewSettings, settings_from_cfg
from semg_hht.synth.raw import SynthConfig, generate
from tests.helpers import hht_cfg

QUICK = ["spectrum.size=32", "emd.max_imf=3"]
CLASSES = ["full", "half", "invalid"]
MUSCLES = ["BICEPS", "BRACHIORADIALIS"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """2 people x 3 movements, 2 channels: 6 recordings."""
    out = tmp_path_factory.mktemp("raw")
    generate(out, SynthConfig(subjects=2, reps=1, duration_s=1.0, fs=500.0, channels=2, seed=5))
    return out / "manifest.csv"


def outputs_by_class_and_channel(out) -> dict[tuple[str, str], list[np.ndarray]]:
    """Every output matrix, read directly, under (movement, muscle)."""
    groups = defaultdict(list)
    for row in csv.DictReader((out / "manifest.csv").open()):
        with np.load(out / row["file"]) as z:
            hht = z["hht"].reshape(-1, 32, 32)
        for name, m in zip(row["channel"].split("+"), hht, strict=True):
            groups[row["movement"], name].append(m)
    return groups


def test_preview_png_is_written_and_its_class_means_are_the_outputs_means(raw, tmp_path):
    out = tmp_path / "hht"
    summary = convert(hht_cfg(f"input={raw}", f"output={out}", *QUICK))
    assert summary["preview"] == str(out / "preview.png") and (out / "preview.png").stat().st_size > 10_000

    p = read_preview(out, 32, per_class=2, max_classes=8, max_channels=8)
    assert (p.target, p.classes, p.channels) == ("movement", CLASSES, MUSCLES)
    assert p.freq_axis == (0.0, 250.0, "linear")  # the rows' frequencies as stored (0..fs/2): drawn in Hz
    groups = outputs_by_class_and_channel(out)
    for k, klass in enumerate(CLASSES):
        for c, muscle in enumerate(MUSCLES):
            direct = groups[klass, muscle]
            assert p.counts[k, c] == len(direct) == 2
            assert np.allclose(p.means[k, c], np.mean(direct, axis=0), atol=1e-6)
            assert len(p.examples[k][c]) == 2  # and each is one of this class's and channel's matrices
            assert all(any(np.array_equal(e, m) for m in direct) for e in p.examples[k][c])
    assert not np.allclose(p.means[0], p.means[1])  # the classes differ: a mix-up would show

    fewer = read_preview(out, 32, per_class=1, max_classes=2, max_channels=1)
    assert (fewer.classes, fewer.channels, fewer.means.shape) == (CLASSES[:2], MUSCLES[:1], (2, 1, 32, 32))
    assert [len(e) for per_class in fewer.examples for e in per_class] == [1, 1]


def test_stacked_outputs_give_a_mean_per_channel_and_a_rerun_redraws_the_preview(raw, tmp_path):
    out = tmp_path / "stacked"
    cfg = hht_cfg(f"input={raw}", f"output={out}", *QUICK, "layout.stack_channels=true")
    convert(cfg)
    p = read_preview(out, 32, per_class=3, max_classes=8, max_channels=8)
    assert p.channels == MUSCLES and p.means.shape == (3, 2, 32, 32)
    groups = outputs_by_class_and_channel(out)
    for k, c in np.ndindex(3, 2):
        assert np.allclose(p.means[k, c], np.mean(groups[CLASSES[k], MUSCLES[c]], axis=0), atol=1e-6)
    assert [len(e) for per_class in p.examples for e in per_class] == [2] * 6  # all a class has

    before = (out / "preview.png").stat().st_ino
    again = convert(cfg)  # every matrix reused, the picture replaced (a new file renamed over it)
    assert again["written"] == 0 and (out / "preview.png").stat().st_ino != before
    assert not list(out.glob(".*"))  # no temp file left behind


def test_unlabelled_outputs_skip_the_preview_with_one_line(tmp_path, caplog):
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    np.savetxt(folder / "session1.csv", np.random.default_rng(0).standard_normal((600, 1)))
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="semg_hht.hht"):
        summary = convert(hht_cfg(f"input={folder}", f"output={out}", "reader.fs=1000", *QUICK))
    assert summary["written"] == 1 and summary["preview"] is None and not (out / "preview.png").exists()
    assert [r.getMessage() for r in caplog.records if "preview" in r.getMessage()] == [
        f"preview.png skipped: no labelled matrix in {out}"
    ]


def test_preview_settings_are_checked_and_never_change_the_signature(raw, tmp_path):
    base = settings_from_cfg(hht_cfg("input=a", "output=b"))  # conf/hht.yaml as shipped
    assert base.preview == PreviewSettings() and base.signature() == "a17e1f4fa9dca9ff"  # main's hash
    changed = replace(base, preview=PreviewSettings(enabled=False, per_class=7, max_classes=1))
    assert changed.signature() == base.signature()
    with pytest.raises(SemgError, match=r"unknown config key\(s\): preview.bogus"):
        settings_from_cfg(hht_cfg("input=a", "output=b", "+preview.bogus=1"))
    with pytest.raises(SemgError, match=r"'preview.per_class'=0 must be >= 1"):
        settings_from_cfg(hht_cfg("input=a", "output=b", "preview.per_class=0"))
    out = tmp_path / "off"
    assert convert(hht_cfg(f"input={raw}", f"output={out}", *QUICK, "preview.enabled=false"))["preview"] is None
    assert not (out / "preview.png").exists()


def test_a_users_own_preview_png_is_never_replaced(raw, tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    (out / "preview.png").write_bytes(b"my own figure")
    with caplog.at_level(logging.WARNING, logger="semg_hht.conversion"):
        summary = convert(hht_cfg(f"input={raw}", f"output={out}", *QUICK))
    assert summary["preview"] is None and (out / "preview.png").read_bytes() == b"my own figure"
    assert any("is not a make_hht preview: left as it is" in r.getMessage() for r in caplog.records)


def test_a_preview_of_large_matrices_is_drawn_from_block_means_in_bounded_memory(raw, tmp_path):
    """spectrum.size=20000: the conversion fitted its memory bound, then the preview (every matrix whole,
    float64 sums, matplotlib's copies) took 22 GB and the OOM killer. It now draws block means of at most
    CELLS x CELLS."""
    from semg_hht.hht.preview import CELLS, shrunk

    m = np.random.default_rng(0).random((512, 600))
    small = shrunk(m, CELLS)
    assert small.shape == (CELLS, CELLS)
    assert np.allclose(shrunk(m[:, :512], CELLS), m[:, :512].reshape(CELLS, 2, CELLS, 2).mean(axis=(1, 3)))
    assert np.allclose(shrunk(np.full((600, 600), 0.25), CELLS), 0.25)  # uneven blocks: still their means
    assert np.array_equal(shrunk(m[:32, :32], CELLS), m[:32, :32])  # small matrices are drawn as they are

    out = tmp_path / "big"
    convert(hht_cfg(f"input={raw}", f"output={out}", "spectrum.size=600", "emd.max_imf=3"))
    p = read_preview(out, 600, per_class=1, max_classes=8, max_channels=8)
    assert p.means.shape == (3, 2, CELLS, CELLS) and p.examples[0][0][0].shape == (CELLS, CELLS)
    with np.load(next(out.glob("*.npz"))) as z:
        assert z["hht"].shape[-1] == 600  # the matrices themselves are untouched
    assert (out / "preview.png").stat().st_size > 10_000
