"""make_hht's record of how it converted a folder (conversion.yaml, hht/record.py): evaluate.py hht_dir=<folder>
reads the raw recordings with those settings, so make_hht's overrides are not repeated as make_hht=[...]; a list
that disagrees is refused in one line, and folders converted before the record existed work as before."""

from __future__ import annotations

import pytest
import yaml

from semg_hht.errors import SemgError
from semg_hht.evaluation.run import input_settings
from semg_hht.hht.record import RECORD, read_record, recorded, recorded_settings
from semg_hht.hht.settings import settings_from_cfg
from tests.helpers import FAST_HHT, compose_cfg, hht_cfg, recordings, run_make_hht

CONVERSION = [*FAST_HHT, "filter.notch_hz=50", "layout.stack_channels=true"]  # what make_hht.py was given


@pytest.fixture
def converted(tmp_path):
    raw = recordings(tmp_path / "raw", ["S1_M_full.csv", "S1_M_half.csv"])
    summary = run_make_hht(raw, tmp_path / "hht", "filter.notch_hz=50", "layout.stack_channels=true")
    return raw, tmp_path / "hht", summary


def given(raw, hht_dir, tmp_path, *make_hht: str):
    """evaluate.py raw=<raw> hht_dir=<hht_dir> [make_hht=[...]]: the settings it reads the raw recordings with."""
    listed = ["make_hht=[" + ",".join(f"'{o}'" for o in make_hht) + "]"] if make_hht else []
    return input_settings(
        compose_cfg([f"raw={raw}", f"hht_dir={hht_dir}", f"paths.output_dir={tmp_path / 'eval'}", *listed], "evaluate")
    )


def test_make_hht_records_the_settings_it_converted_with(converted):
    raw, out, summary = converted
    assert summary["record"] == str(out / RECORD)
    record = read_record(out)
    assert record["spectrum"]["size"] == 32 and record["filter"]["notch_hz"] == 50.0 and record["reader"]["fs"] == 1000
    assert record["layout"]["stack_channels"] is True and record["filter"]["bandpass"] == [20.0, 450.0]  # resolved
    assert not {"input", "output", "workers", "progress", "shard", "preview"} & set(record)  # not how it was run
    made = settings_from_cfg(hht_cfg(f"input={raw}", f"output={out}", *CONVERSION))
    back = recorded_settings(out, record, str(raw))  # read back whole: the same settings, the same signature
    assert recorded(back) == recorded(made) == record and back.signature() == made.signature()


def test_evaluate_reads_the_record_without_make_hht(converted, tmp_path):
    raw, out, _ = converted
    settings = given(raw, out, tmp_path)  # the defaults alone gave another signature: refused before the record
    assert settings.filter.notch_hz == 50 and settings.spectrum.size == 32 and settings.layout.stack_channels
    assert recorded(given(raw, out, tmp_path, *CONVERSION)) == recorded(settings)  # the same list repeated: accepted


def test_a_make_hht_list_that_disagrees_with_the_record_is_refused(converted, tmp_path):
    raw, out, _ = converted
    with pytest.raises(SemgError) as err:
        given(raw, out, tmp_path, *FAST_HHT, "spectrum.size=64")
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{out}: make_hht=[")
    assert "disagrees with how hht_dir was converted" in line
    assert f"({RECORD}: filter.notch_hz=50.0 there, null here; spectrum.size=32 there, 64 here;" in line
    assert line.endswith(f"-> drop make_hht= (evaluate.py reads hht_dir's {RECORD})")


def test_a_folder_converted_before_the_record_needs_make_hht_as_before(converted, tmp_path):
    raw, out, _ = converted
    (out / RECORD).unlink()
    assert given(raw, out, tmp_path, *CONVERSION).filter.notch_hz == 50
    with pytest.raises(SemgError, match=r"made with other make_hht settings than make_hht=\[\] gives"):
        given(raw, out, tmp_path)


def test_a_conversion_yaml_make_hht_did_not_write_is_refused_and_kept(tmp_path):
    raw = recordings(tmp_path / "raw", ["S1_M_full.csv"])
    mine = tmp_path / "hht" / RECORD
    mine.parent.mkdir()
    mine.write_text("my: notes\n")
    with pytest.raises(SemgError, match=rf"{RECORD}: {RECORD} is not make_hht's record of a conversion -> move it"):
        run_make_hht(raw, tmp_path / "hht")
    assert mine.read_text() == "my: notes\n" and not list(mine.parent.glob("*.npz"))  # refused before converting
    with pytest.raises(SemgError, match="is not make_hht's record"):
        given(raw, mine.parent, tmp_path)


def test_a_rerun_rewrites_the_record_with_its_own_settings(converted):
    """Settings that change no matrix (here the file-name scheme's words) reuse the matrices; the record is the
    last complete run's, as the manifest is."""
    raw, out, _ = converted
    summary = run_make_hht(raw, out, "filter.notch_hz=50", "layout.stack_channels=true", "inputs.recursive=false")
    assert summary["skipped"] == 2 and read_record(out)["inputs"]["recursive"] is False
    assert yaml.safe_load((out / RECORD).read_text())["made_by"] == "semg_hht make_hht"
