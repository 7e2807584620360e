"""The real-data configs: every key read, data.filter selects the device's rows, on a make_hht-shaped
stand-in (random matrices, the real manifest's columns), so no real data is needed here."""

import numpy as np
import pytest

from semg_hht.errors import SemgError
from semg_hht.io import save_npz, write_csv
from semg_hht.training.train import build_datamodule, build_model
from tests.config_keys import unread_keys
from tests.helpers import CONF, TINY, compose_cfg

COLUMNS = ["file", "subject", "movement", "gender", "device", "channel"]


@pytest.fixture(scope="module")
def hht_like(tmp_path_factory):
    """5 Biopac people (no gender) and 5 MioTracker people (3 M, 2 F) x 5 movements x 2 repetitions."""
    out = tmp_path_factory.mktemp("mt_hht")
    rng = np.random.default_rng(0)
    rows = []
    for device, genders in (("biopac", [""] * 5), ("miotracker", ["M", "M", "M", "F", "F"])):
        for s, gender in enumerate(genders, start=1):
            for m in range(1, 6):
                for _ in range(2):  # repetitions
                    name = f"EMG_m{m}_{gender or 'U'}_{len(rows):03d}.npz"
                    scales = {k: rng.uniform(0.5, 2.0, 2) for k in ("norm_scale", "spectrum_peak")}  # as make_hht
                    save_npz(out / name, hht=rng.random((2, 32, 32)).astype(np.float32), **scales)
                    rows.append(
                        {
                            "file": name,
                            "subject": f"{device}-{s:02d}",
                            "movement": f"m{m}",
                            "gender": gender,
                            "device": device,
                            "channel": "CH1+CH2",
                        }
                    )
    write_csv(out / "manifest.csv", rows, COLUMNS)
    return out


def cfg_for(experiment, data_dir, tmp_path, *extra):
    """The experiment on the stand-in, whose 5 people per device do not include the real test people."""
    return compose_cfg(
        [
            f"experiment={experiment}", *TINY, f"paths.data_dir={data_dir}", f"paths.output_dir={tmp_path}",
            "data.test_filter=null", *extra,
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    "experiment",
    [
        "muscletracker_movement",
        "muscletracker_gender",
        "muscletracker_mio_movement",
        "[muscletracker_movement,muscletracker_gpu]",
    ],
)
def test_real_data_experiments_read_every_key(experiment, tmp_path):
    cfg = compose_cfg([f"experiment={experiment}", f"paths.output_dir={tmp_path}"])
    assert unread_keys(cfg) == []
    assert cfg.data.split == "group" and cfg.data.n_folds == 5 and cfg.model.in_channels == 2
    # nothing chosen on the validation fold: fixed epochs, no plateau steering, the last epoch scored
    assert cfg.report_on == "last" and cfg.scheduler.plateau is None
    held_out = cfg.data.test_filter.subject  # people kept out of every choice: the test set
    assert len(held_out) == (4 if "muscletracker_movement" in experiment else 3)


@pytest.mark.parametrize(
    ("experiment", "device", "classes"),
    [
        ("muscletracker_movement", "biopac", ["m1", "m2", "m3", "m4", "m5"]),
        ("muscletracker_gender", "miotracker", ["M", "F"]),
        ("muscletracker_mio_movement", "miotracker", ["m1", "m2", "m3", "m4", "m5"]),
    ],
)
def test_filter_keeps_one_device_and_folds_are_subject_disjoint(experiment, device, classes, hht_like, tmp_path):
    datamodule = build_datamodule(cfg_for(experiment, hht_like, tmp_path))
    datamodule.setup("fit")
    assert datamodule.class_names == classes and len(datamodule.recordings) == 50
    assert {r.labels["device"] for r in datamodule.recordings} == {device}
    subjects = np.array([r.subject for r in datamodule.recordings])
    assert not set(subjects[datamodule.train_index]) & set(subjects[datamodule.val_index])
    model = build_model(cfg_for(experiment, hht_like, tmp_path), datamodule)
    assert model(datamodule.x[:2]).shape == (2, len(classes))


def test_the_generic_real_data_recipe_is_the_tuned_one_on_whatever_the_manifest_holds(hht_like, tmp_path):
    """experiment=real_movement: muscletracker_movement's recipe, without its device, class list and test people."""
    cfg = compose_cfg(["experiment=real_movement", f"paths.output_dir={tmp_path}"])
    tuned = compose_cfg(["experiment=muscletracker_movement", f"paths.output_dir={tmp_path}"])
    assert unread_keys(cfg) == []
    for group in ("model", "optimizer", "scheduler", "trainer", "callbacks"):
        assert cfg[group] == tuned[group], group
    assert cfg.report_on == tuned.report_on == "last" and cfg.data.augment == tuned.data.augment
    assert (cfg.data.filter, cfg.data.test_filter, cfg.data.classes.movement) == ({}, None, None)
    assert {k: v for k, v in cfg.data.items() if k not in ("filter", "test_filter", "classes", "data_dir")} == {
        k: v for k, v in tuned.data.items() if k not in ("filter", "test_filter", "classes", "data_dir")
    }
    datamodule = build_datamodule(
        compose_cfg(["experiment=real_movement", *TINY, f"paths.data_dir={hht_like}", f"paths.output_dir={tmp_path}"])
    )
    datamodule.setup("fit")  # both devices, every class in the manifest, nobody held out
    assert datamodule.class_names == ["m1", "m2", "m3", "m4", "m5"] and len(datamodule.recordings) == 100
    assert datamodule.test_recordings == []


def test_filter_that_matches_nothing_or_needs_a_manifest_is_an_error(hht_like, tmp_path):
    with pytest.raises(SemgError, match="no manifest row matches"):
        build_datamodule(cfg_for("muscletracker_movement", hht_like, tmp_path, "data.filter.device=emgpro")).setup()
    with pytest.raises(SemgError, match="data.filter selects manifest rows"):
        build_datamodule(cfg_for("muscletracker_movement", hht_like, tmp_path, "data.label_source=filename"))


def test_filter_accepts_a_list_of_values(hht_like, tmp_path):
    cfg = cfg_for("muscletracker_movement", hht_like, tmp_path, "data.filter.device=[biopac,miotracker]")
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    assert len(datamodule.recordings) == 100


@pytest.mark.parametrize("experiment", ["muscletracker_movement", "muscletracker_gender"])
def test_seed_config_row_on_real_data_keeps_the_seeds_hyperparameters(experiment, tmp_path):
    """make eval-real's seed row (REAL_GPU=1): experiment=[<real>,seed_cnn] on 256x256, nothing tuned
    leaking in from the real-data experiment (its warm-up, weight decay, log input)."""
    cfg = compose_cfg(
        [
            f"experiment=[{experiment},seed_cnn]",
            "data.input_size=256",
            "model.input_log_ref=null",
            f"paths.output_dir={tmp_path}",
        ]
    )
    assert unread_keys(cfg) == []
    assert (cfg.model.base_channels, cfg.model.num_layers, cfg.model.head, cfg.trainer.max_epochs) == (64, 3, "mlp", 50)
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.weight_decay) == ("Adam", 1e-3, 0.0)
    assert (cfg.data.batch_size, cfg.data.augment.enabled, cfg.model.in_channels) == (16, False, 2)
    assert cfg.data.scaling == "minmax"  # not the real-data recipe's dataset scale
    assert cfg.scheduler.warmup_epochs == 0 and cfg.data.split == "group" and cfg.data.filter


def test_linear_control_reads_the_cnns_matrices_folds_and_test_people(hht_like):
    from semg_hht.evaluation.classic import evaluate_group_folds, evaluate_test_set
    from semg_hht.evaluation.hht_features import hht_feature_sets
    from semg_hht.evaluation.run import experiment_data

    data = experiment_data("muscletracker_movement", conf_dir=str(CONF)) | {
        "test_filter": {"subject": ["biopac-05"]},
        "input_size": 32,
    }
    fs, test = hht_feature_sets(hht_like, data)
    assert fs.x.shape == (40, 2 * 32 * 32) and len(test.y) == 10  # 4 people develop, 1 is the test set
    params = {"n_components": 5, "solver": "svd"}
    folds = evaluate_group_folds(fs, "pca_lda", 4, 42, params=params)
    assert sorted(s for f in folds for s in f["val_subjects"]) == [f"biopac-0{i}" for i in range(1, 5)]
    held_out = evaluate_test_set(fs, test, "pca_lda", params=params)
    assert held_out["val_subjects"] == ["biopac-05"] and 0 <= held_out["acc"] <= 1


def test_table_rows_name_the_device_of_a_one_device_experiment():
    """The same target on two amplifiers is two groups of people: the table keeps them apart."""
    from semg_hht.evaluation.run import experiment_data, row_target

    assert row_target(experiment_data("muscletracker_movement", conf_dir=str(CONF))) == "movement (biopac)"
    assert row_target(experiment_data("muscletracker_mio_movement", conf_dir=str(CONF))) == "movement (miotracker)"
    assert row_target({"target": "movement", "filter": {"device": ["biopac", "miotracker"]}}) == "movement"
    assert row_target({"target": "gender", "filter": {}}) == "gender"
