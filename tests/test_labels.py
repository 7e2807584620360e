"""Labels from file names and manifests: the seed's scheme (as training composes it), synonyms from YAML,
bad names."""

from pathlib import Path

import pytest

from semg_hht.data.labels import Recording, read_manifest, target_classes, target_value
from semg_hht.errors import SemgError
from semg_hht.filename_scheme import FilenameScheme
from tests.helpers import compose_cfg


@pytest.fixture(scope="module")
def scheme() -> FilenameScheme:
    cfg = compose_cfg(["paths.output_dir=/tmp/unused"])
    return FilenameScheme(**cfg.data.filename_scheme)


@pytest.mark.parametrize(
    ("name", "movement", "gender"),
    [
        ("BICEPS_fatiguetest_M_006.npz", "full", "M"),
        ("TRICEPS_half_F_012.npz", "half", "F"),
        ("BICEPS_full_F_001.npz", "full", "F"),
        ("FOREARM_invalid_M_100.npz", "invalid", "M"),
        ("BICEPS_wrong_M_003.npz", "invalid", "M"),
        ("biceps-Half-F-7.npz", "half", "F"),
    ],
)
def test_seed_file_names(scheme, name, movement, gender):
    assert scheme.labels(Path(name)) == {"movement": movement, "gender": gender}


@pytest.mark.parametrize("name", ["Test_001.npz", "test-biceps.npz", "TEST_full_M_1.npz", "Testing.npz"])
def test_test_files_are_unlabeled(scheme, name):
    assert scheme.labels(Path(name)) == {}


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("BICEPS_full_X_001.npz", "gender"),
        ("BICEPS_curl_M_001.npz", "movement"),
        ("notes.npz", "gender and movement"),
    ],
)
def test_unparseable_names_say_what_is_missing_and_how_to_fix(scheme, name, missing):
    with pytest.raises(SemgError) as err:
        scheme.labels(Path(name))
    message = str(err.value)
    assert name in message and f"cannot read the {missing}" in message and "MUSCLE_movement_GENDER" in message


def test_synonyms_come_from_config():
    scheme = FilenameScheme({"partial": "half", "complete": "full"}, r"_([MF])_", "unl")
    assert scheme.labels(Path("X_partial_M_1.npz"))["movement"] == "half"
    assert scheme.labels(Path("unl_anything.npz")) == {}


def test_manifest_rows_subjects_and_empty_cells(tmp_path):
    (tmp_path / "m.csv").write_text("file,subject,movement,gender\na.npz,S1,m1,M\nsub/b.npz,S2,m2,\n")
    recs = read_manifest(tmp_path / "m.csv", tmp_path)
    assert [r.subject for r in recs] == ["S1", "S2"]
    assert recs[1].path == (tmp_path / "sub" / "b.npz").resolve()
    assert recs[1].labels == {"movement": "m2", "gender": None}


def test_manifest_paths_escaping_the_data_root_are_refused(tmp_path):
    (tmp_path / "m.csv").write_text("file,movement\n../../etc/passwd,m1\n")
    with pytest.raises(SemgError, match="outside the data folder"):
        read_manifest(tmp_path / "m.csv", tmp_path)
    assert len(read_manifest(tmp_path / "m.csv", tmp_path, allow_outside=True)) == 1


@pytest.mark.parametrize("content", ["", "name,movement\nx.npz,m1\n"])
def test_manifest_without_file_column(tmp_path, content):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(SemgError, match="'file' column"):
        read_manifest(tmp_path / "m.csv", tmp_path)


def test_target_classes_keep_yaml_order_infer_when_null_and_combine():
    recs = [Recording(Path("a"), {"movement": "m2", "gender": "F"}), Recording(Path("b"), {"movement": "m1"})]
    assert target_classes("movement", {"movement": ["half", "full"]}, recs) == ["half", "full"]
    assert target_classes("movement", {"movement": None}, recs) == ["m1", "m2"]
    combined = target_classes("gender_movement", {"gender": ["M", "F"], "movement": ["full", "half"]}, recs)
    assert combined == ["M_full", "M_half", "F_full", "F_half"]
    assert target_value(recs[0], "gender_movement") == "F_m2"
    assert target_value(recs[1], "gender_movement") is None
    with pytest.raises(SemgError, match="unknown target"):
        target_classes("speed", {}, recs)
