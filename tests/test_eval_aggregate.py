"""Fold aggregation, the leakage warning, the table writers, reading a multirun's folds, and evaluate.py
on multiruns alone."""

import csv
import json

import pytest
from omegaconf import OmegaConf

from semg_hht.errors import SemgError
from semg_hht.evaluation.run import evaluate
from semg_hht.evaluation.table import final_name, final_runs, markdown, sweep_folds, table_row, write_table
from semg_hht.reporting.aggregate import aggregate, leakage_check
from semg_hht.reporting.sweep import SweepSummary, fold_summary
from tests.helpers import compose_cfg

FOLDS = [
    {"acc": 0.5, "balanced_acc": 0.4, "f1_macro": 0.3, "subject_vote_acc": None, "chance": 0.2},
    {"acc": 0.7, "balanced_acc": 0.6, "f1_macro": 0.5, "subject_vote_acc": None, "chance": 0.2},
    {"acc": 0.9, "balanced_acc": 0.8, "f1_macro": 0.7, "subject_vote_acc": None, "chance": 0.2},
]


def test_aggregate_mean_and_sample_std_over_folds():
    row = aggregate(FOLDS)
    assert row["n_folds"] == 3
    assert row["acc_mean"] == pytest.approx(0.7) and row["acc_std"] == pytest.approx(0.2)
    assert row["balanced_acc_mean"] == pytest.approx(0.6) and row["f1_macro_std"] == pytest.approx(0.2)
    assert row["chance_mean"] == pytest.approx(0.2) and row["chance_std"] == pytest.approx(0.0, abs=1e-12)
    assert row["subject_vote_acc_mean"] is None and row["subject_vote_acc_std"] is None


def test_aggregate_skips_missing_values_and_one_fold_has_zero_std():
    row = aggregate([{"acc": 0.5, "subject_vote_acc": 1.0}, {"acc": float("nan"), "subject_vote_acc": 0.0}])
    assert row["acc_mean"] == 0.5 and row["acc_std"] == 0.0
    assert row["subject_vote_acc_mean"] == 0.5


def test_leakage_warning_only_beyond_the_tolerance():
    assert leakage_check(0.74, 0.70) is None
    assert leakage_check(0.70, 0.74) is None
    warning = leakage_check(0.90, 0.55)
    assert warning and "LEAKAGE" in warning and "90.0%" in warning and "55.0%" in warning and "+35.0%" in warning
    assert leakage_check(0.60, 0.70, tolerance=0.05)  # a large gap either way is suspicious
    assert leakage_check(0.80, 0.70, tolerance=0.15) is None


def test_table_written_as_markdown_and_csv(tmp_path):
    rows = [table_row("movement", "classic features + LDA", "group", FOLDS, note="n")]
    md, csv_path = write_table(tmp_path, rows, header="HEAD\n", footer="\n> warn\n")
    text = md.read_text()
    assert text.startswith("HEAD") and "0.700 ± 0.200" in text and text.endswith("> warn\n")
    with open(csv_path, newline="") as f:
        (line,) = list(csv.DictReader(f))
    assert float(line["acc_mean"]) == pytest.approx(0.7) and line["subject_vote_acc_mean"] == ""
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files
    assert "| movement | classic features + LDA | group | 3 |" in markdown(rows)
    one = markdown([table_row("gender", "x", "stratified", FOLDS[:1])])
    assert "| 0.500 | 0.400 |" in one and "±" not in one


def fake_job(sweep, i, split, metrics):
    job = sweep / f"{i}_data.fold={i}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(f"- data.fold={i}\n")
    OmegaConf.save(OmegaConf.create({"data": {"split": split}, "ckpt": None}), job / ".hydra" / "config.yaml")
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({f"val/{k}": v for k, v in metrics.items()}))


def test_sweep_folds_reads_finished_jobs_and_their_split(tmp_path):
    for i, fold in enumerate(FOLDS):
        fake_job(tmp_path, i, "group", fold)
    fake_job(tmp_path, 3, "group", None)  # a failed job is left out
    folds, split = sweep_folds(tmp_path)
    assert split == "group" and [f["acc"] for f in folds] == [0.5, 0.7, 0.9]


def test_sweep_summary_aggregates_a_fold_sweep_only(tmp_path, capsys):
    for i, fold in enumerate(FOLDS):
        fake_job(tmp_path, i, "group", fold)
    SweepSummary(["val/acc", "val/f1_macro", "val/chance"], "summary.csv").on_multirun_end(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    )
    with open(tmp_path / "folds_summary.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["n_folds"] == "3" and float(row["acc_mean"]) == pytest.approx(0.7)
    assert float(row["acc_std"]) == pytest.approx(0.2) and float(row["f1_macro_mean"]) == pytest.approx(0.5)
    assert "Over 3 folds" in capsys.readouterr().out
    other = [{"status": "ok", "overrides": f"model.num_layers={n}", "val/acc": 0.5} for n in (2, 3)]
    assert fold_summary(other, ["val/acc"]) is None  # not a k-fold sweep
    mixed = [{"status": "ok", "overrides": f"data.fold={i} model.num_layers={i}", "val/acc": 0.5} for i in (0, 1)]
    assert fold_summary(mixed, ["val/acc"]) is None  # folds of different models do not average


def test_evaluate_tables_the_sweeps_and_records_the_command(tmp_path):
    """evaluate.py with sweeps only (no raw recordings): labels with spaces and parentheses, the
    leakage check between a random-split and a subject-fold sweep of one method, the command header."""
    for i, fold in enumerate(FOLDS):
        fake_job(tmp_path / "group", i, "group", fold)
    fake_job(tmp_path / "random", 0, "stratified", FOLDS[2] | {"acc": 0.95})
    label = "CNN tuned (stacked channels)"
    sweeps = ",".join(f'{{target:movement,label:"{label}",dir:{tmp_path / name}}}' for name in ("group", "random"))
    cfg = compose_cfg(
        ["experiments=[]", f"sweeps=[{sweeps}]", "hardware=2-core CPU", f"paths.output_dir={tmp_path / 'out'}"],
        "evaluate",
    )
    result = evaluate(cfg)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["folds.csv", "results.csv", "results.md"]
    text = (tmp_path / "out" / "results.md").read_text()
    assert text.startswith("Measured ") and "on 2-core CPU. Command: `python evaluate.py 'experiments=[]' " in text
    assert f"'sweeps=[{sweeps}]'" in result["command"] and "'hardware=2-core CPU'" in result["command"]
    assert f"| movement | {label} | group | 3 | 0.700 ± 0.200 |" in text
    assert f"| movement | {label} | stratified | 1 | 0.950 |" in text and "LEAKAGE" in text
    assert [w.startswith(f"movement / {label}: LEAKAGE") for w in result["warnings"]] == [True]


def fake_final(run_dir, acc, seed=None):
    """A final model's run: its test figures, and with ``seed`` the .hydra record of a multirun job."""
    run_dir.mkdir(parents=True)
    people = ["P1", "P2"]
    (run_dir / "metrics.json").write_text(json.dumps({"test/acc": acc, "test/chance": 0.2, "test/subjects": people}))
    if seed is not None:
        (run_dir / ".hydra").mkdir()
        (run_dir / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n")
        OmegaConf.save(OmegaConf.create({"seed": seed}), run_dir / ".hydra" / "config.yaml")


def test_the_test_figure_of_several_final_models_is_their_mean_and_spread(tmp_path):
    """final: one run (its figure as it is), or a multirun of final models, one per training seed (their
    mean ± std, and every model's figure in folds.csv named by its seed)."""
    for i, fold in enumerate(FOLDS):
        fake_job(tmp_path / "cv", i, "group", fold)
    fake_final(tmp_path / "one", 0.4)
    for job, (seed, acc) in enumerate([(0, 0.4), (1, 0.5), (2, 0.6)]):
        fake_final(tmp_path / "seeds" / str(job), acc, seed)
    sweeps = ",".join(
        f'{{target:movement,label:"{label}",dir:{tmp_path / "cv"},final:{tmp_path / final}}}'
        for label, final in (("CNN one", "one"), ("CNN seeds", "seeds"))
    )
    cfg = compose_cfg(["experiments=[]", f"sweeps=[{sweeps}]", f"paths.output_dir={tmp_path / 'out'}"], "evaluate")
    result = evaluate(cfg)
    one, seeds = result["rows"]
    assert one["test_acc"] == pytest.approx(0.4) and one["test_acc_std"] is None and one["test_runs"] == 1
    assert seeds["test_acc"] == pytest.approx(0.5) and seeds["test_acc_std"] == pytest.approx(0.1)
    assert seeds["test_runs"] == 3 and seeds["test_subjects"] == 2
    text = (tmp_path / "out" / "results.md").read_text()
    assert "| 0.400 |" in text and "| 0.500 ± 0.100 (3 runs) |" in text
    with open(tmp_path / "out" / "folds.csv", newline="") as f:
        written = [(r["method"], r["fold"], float(r["acc"])) for r in csv.DictReader(f)]
    assert written[:4] == [("CNN one", str(i), FOLDS[i]["acc"]) for i in range(3)] + [("CNN one", "test", 0.4)]
    assert written[-3:] == [("CNN seeds", f"test (seed {s})", a) for s, a in [(0, 0.4), (1, 0.5), (2, 0.6)]]


def test_a_final_folder_without_runs_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SemgError, match="nor finished jobs of a multirun there"):
        final_runs(tmp_path / "empty")


def test_an_svm_on_a_trained_encoder_is_named_by_the_encoders_seed(tmp_path):
    """fit_svm's own seed is the SVM's (the same for every final model): folds.csv names each gender SVM
    by the seed of the final model whose encoder it reads, so its rows stay apart."""
    fake_final(tmp_path / "cnn" / "1", 0.6, seed=1)
    svm = tmp_path / "svm" / "0"
    fake_final(svm, 0.5, seed=42)
    OmegaConf.save(
        OmegaConf.create({"seed": 42, "ckpt": str(tmp_path / "cnn/1/checkpoints/last.ckpt")}),
        svm / ".hydra/config.yaml",
    )
    assert final_name(svm) == "test (seed 1)"
    assert final_name(tmp_path / "cnn" / "1") == "test (seed 1)"
    (tmp_path / "bare").mkdir()
    assert final_name(tmp_path / "bare") == "test"
