"""Shared helpers of the tests (not a test module): paths, the real conf/ composed with overrides,
tiny-model overrides, sEMG-like signals, the default file-name scheme's reading of a name, a synthesised
checkpoint for predict, quick make_hht runs, every entry point in-process and as a command (also used by
bench.adversarial)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from semg_hht.errors import SemgError, run_guarded
from semg_hht.evaluation.run import evaluate
from semg_hht.filename_scheme import FilenameScheme
from semg_hht.hht.pipeline import make_hht
from semg_hht.models import HHTClassifier
from semg_hht.prediction import predict
from semg_hht.svm import fit_svm
from semg_hht.training import train

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED = ROOT.parent / "shared"
MUSCLETRACKER = SHARED / "data" / "muscletracker"

# A model small enough to train in seconds on 2 CPU cores; everything else is the real config.
TINY = [
    "data.input_size=32",
    "model.num_layers=2",
    "model.base_channels=4",
    "data.batch_size=8",
    "data.load_workers=2",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
]


def compose_cfg(overrides: list[str], config_name: str = "train"):
    """The real conf/ with overrides, as the entry script would see it (hydra node included)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(config_name, overrides=overrides, return_hydra_config=True)


def hht_cfg(*overrides: str):
    """conf/hht.yaml composed by Hydra with command-line style overrides (no progress bar)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("hht", overrides=["progress=false", "workers=1", *overrides])


def emg_like(n: int, fs: float, seed: int = 0) -> np.ndarray:
    """Unit-variance band-limited noise under a burst envelope (a quick stand-in for sEMG)."""
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(seed)
    x = sosfiltfilt(butter(4, [20, min(450, 0.45 * fs)], btype="band", fs=fs, output="sos"), rng.standard_normal(n))
    t = np.arange(n) / n
    x = x * (0.1 + np.exp(-(((t - 0.5) / 0.2) ** 2)))
    return (x - x.mean()) / x.std()


def default_scheme() -> FilenameScheme:
    """conf/filename_scheme/default.yaml: the names make_hht writes and training reads by default."""
    return FilenameScheme(**OmegaConf.to_container(OmegaConf.load(CONF / "filename_scheme" / "default.yaml")))


def read_back(name: str, scheme: FilenameScheme | None = None) -> dict[str, str] | None:
    """The training side's reading of a file name (default scheme): its labels, or None when the name
    is unlabelled or cannot be read."""
    try:
        return (scheme or default_scheme()).labels(Path(name)) or None
    except SemgError:
        return None


# ---------------------------------------------------------------- predict.py on a synthesised checkpoint

HP = dict(
    num_classes=3, class_names=["full", "half", "invalid"], in_channels=1, input_size=32, base_channels=4,
    num_layers=2, norm="batch", residual=False, residual_from=6, leaky_slope=0.2, input_log_ref=None,
    head="mlp", head_hidden=8, dropout=0.0, label_smoothing=0.1, optimizer={"name": "AdamW", "lr": 1e-3},
    scheduler={"warmup_epochs": 0, "cosine": True, "plateau": None, "mode": "max", "monitor": "val/acc"},
)  # fmt: skip


def data_hparams(data_dir: Path) -> dict:
    scheme = {"movement_synonyms": {"full": "full"}, "gender_pattern": "_([MF])_", "unlabeled_prefix": "test"}
    return {"data_dir": str(data_dir), "filename_scheme": scheme, "scaling": "minmax", "target": "movement"}


def write_ckpt(path: Path, data_dir: Path, hp: dict | None = None, **changes) -> Path:
    """A checkpoint as train.py writes it (the keys predict reads), from an untrained model."""
    model = HHTClassifier(**HP)
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": hp or HP,
        "datamodule_hyper_parameters": data_hparams(data_dir),
    } | changes
    torch.save(checkpoint, path)
    return path


def matrix(size=32, seed=0):
    return np.random.default_rng(seed).random((size, size)).astype(np.float32)


def run_predict(tmp_path, *overrides):
    """predict.py in-process on the real conf/predict.yaml."""
    return predict(compose_cfg([f"paths.output_dir={tmp_path / 'out'}", *overrides], "predict"))


# ---------------------------------------------------------------- make_hht on quick recordings

FAST_HHT = ["reader.fs=1000", "spectrum.size=32", "emd.max_imf=3"]


def recordings(folder: Path, names: list[str], seed: int = 0, samples: int = 600) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        np.savetxt(folder / name, emg_like(samples, 1000.0, seed=seed + i)[:, None])
    return folder


def convert_real(output: Path) -> dict:
    """make_hht in-process on ../shared's MuscleTracker recordings with the real-data recipe's conversion
    (stacked channels, 64 rows on a log axis over the band-pass), as make eval-real converts them."""
    return make_hht(
        hht_cfg(
            f"input={MUSCLETRACKER / 'manifest.csv'}", f"output={output}", "filter.notch_hz=60",
            "filter.notch_harmonics=3", "layout.stack_channels=true", "spectrum.size=64", "progress=false",
            "spectrum.freq_range=band", "spectrum.freq_scale=log",
        )
    )  # fmt: skip


def run_make_hht(input_path: Path, output: Path, *extra: str) -> dict:
    """make_hht in-process on small, fast settings."""
    return make_hht(hht_cfg(f"input={input_path}", f"output={output}", *FAST_HHT, *extra))


# ---------------------------------------------------------------- every entry point in-process

ENTRY = {"train": ("train", train), "fit_svm": ("fit_svm", fit_svm), "predict": ("predict", predict),
         "make_hht": ("hht", make_hht), "evaluate": ("evaluate", evaluate)}  # fmt: skip


def copy_data(src: Path, dst: Path, n: int | None = None) -> Path:
    dst.mkdir(parents=True)
    for p in sorted(src.glob("*.npz"))[:n]:
        shutil.copy(p, dst / p.name)
    return dst


def manifest_case(t: Path, d: Path, text: str):
    """A copy of 4 matrices labelled by manifest ``text``: the overrides, and the manifest."""
    data = copy_data(d, t / "data", n=4)
    (data / "m.csv").write_text(text)
    return [f"paths.data_dir={data}", "data.label_source=manifest", "data.manifest=m.csv"], data / "m.csv"


def error_lines(entry: str, overrides: list[str], tmp_path: Path, synthetic_dir: Path, capsys) -> list[str]:
    """Run an entry script's function the way the script does (run_guarded), expect exit status 1,
    and return the non-blank lines it wrote to stderr."""
    config_name, fn = ENTRY[entry]
    base = [*TINY, f"paths.data_dir={synthetic_dir}"] if entry == "train" else []
    output = [] if entry == "make_hht" else [f"paths.output_dir={tmp_path / 'out'}"]
    cfg = compose_cfg([*base, *output, *overrides], config_name)
    os.environ.pop("HYDRA_FULL_ERROR", None)
    with pytest.raises(SystemExit) as exit_info:
        run_guarded(fn, cfg)
    assert exit_info.value.code == 1
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# ---------------------------------------------------------------- every entry point as a command


def script(name: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """An entry script (train.py, make_hht.py ...) run as a user runs it, in a fresh interpreter."""
    cmd = [sys.executable, str(ROOT / name), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)


def last_line(result: subprocess.CompletedProcess) -> str:
    return ([ln for ln in result.stderr.splitlines() if ln.strip()] or [""])[-1]


def session_alive(sid: int) -> list[str]:
    """Processes still in the session a command was started in (start_new_session: its workers, forkserver)."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "-s", str(sid)], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if ln.strip()]


# ---------------------------------------------------------------- a writer's temp file (semg_hht.io.atomic_open)

_WRITER = """import os, sys
from semg_hht.io import atomic_open
target, how, content = sys.argv[1:]
with atomic_open(target, "wb") as f:
    f.write(open(content, "rb").read() if content else b"half a file")
    f.flush()
    print("writing", flush=True)
    if how == "kill":
        os.kill(os.getpid(), 9)
    sys.stdin.read()
"""


def temp_writer(target: Path, kill: bool, content: Path | None = None) -> tuple[Path, subprocess.Popen]:
    """A process writing ``target`` (``content``'s bytes) with atomic_open, stopped mid-write: killed
    outright (kill -9: its temp file stays, its PID is gone) or still writing until its stdin is closed.
    Returns the temp file and the process."""
    before = set(target.parent.iterdir()) if target.parent.is_dir() else set()
    cmd = [sys.executable, "-c", _WRITER, str(target), "kill" if kill else "wait", str(content or "")]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
    if kill:
        proc.wait(timeout=60)
    (temp,) = set(target.parent.iterdir()) - before
    return temp, proc


# ---------------------------------------------------------------- people whose electrodes differ (adaptation)

CLASSES = ("full", "half", "invalid")


def two_channel_matrix(movement: str, swapped: bool, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """(2, size, size): each class is a pair of frequency tracks, one per electrode. full: channel 1 low
    and channel 2 high; half: the other way round; invalid: both in the middle. Swapping the electrodes
    turns a full into a half for any model of the others."""
    rows = {"full": (6, 24), "half": (24, 6), "invalid": (15, 15)}[movement]
    out = 0.05 * rng.random((2, size, size))
    for channel, row in enumerate(rows):
        row = row * size // 32 + int(rng.integers(-1, 2))
        out[channel, row - 1 : row + 2] += 0.6 + 0.4 * rng.random(size)
    return (out[::-1] if swapped else out).astype(np.float32).copy()


def swapped_people(folder: Path, people: int = 6, swapped: tuple[int, ...] = (6,)) -> Path:
    """people x 3 classes x 3 repetitions of two_channel_matrix (the people numbered in ``swapped`` with
    their electrodes swapped), manifest.csv (file, subject, movement, repetition), train.csv (all but the
    last two people) and new.csv (the last two)."""
    from semg_hht.io import save_npz, write_csv

    rng = np.random.default_rng(0)
    rows = []
    for s in range(1, people + 1):
        for rep in (1, 2, 3):
            for movement in CLASSES:
                name = f"S{s:02d}_{movement}_{rep}.npz"
                save_npz(folder / name, hht=two_channel_matrix(movement, s in swapped, rng))
                rows.append({"file": name, "subject": f"S{s:02d}", "movement": movement, "repetition": rep})
    columns = list(rows[0])
    write_csv(folder / "manifest.csv", rows, columns)
    newcomers = {f"S{s:02d}" for s in (people - 1, people)}
    write_csv(folder / "train.csv", [r for r in rows if r["subject"] not in newcomers], columns)
    write_csv(folder / "new.csv", [r for r in rows if r["subject"] in newcomers], columns)
    return folder
