"""Benchmark: training samples/s of this project (HHTClassifier + HHTDataModule under a real
Lightning Trainer) against the seed's hand-written loop (reference/seed_loop.py), same synthetic data,
same device, interleaved in the same run.

    python -m bench.train [--layers 3 5 7] [--precisions fp32 bf16] [--steps 3] [--warmup 1]
                          [--repeats 1] [--device auto] [--table FILE]

fp32: ours = trainer=cpu (GPU: trainer=default on the GPU) vs the seed loop in fp32.
bf16: ours = trainer=cpu_fast (GPU: trainer=gpu: bf16-mixed, channels_last, fused AdamW, data on
      the GPU) vs the seed loop with bf16 autocast; "x seed fp32" is against the plain seed loop.
Batch 16 (the seed's), no augmentation (the seed has none), no checkpoints, loggers or validation;
the first --warmup steps of every run are not timed. FLOP/s counts the real training FLOPs
(torch.utils.flop_counter: forward + backward of convolutions and matmuls) and is compared with
an n x n matmul measured on the same device in the same run.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch.utils.flop_counter import FlopCounterMode

from bench import common
from reference.seed_loop import seed_model, train_steps
from semg_hht.config import build
from semg_hht.models.inference import pick_device
from semg_hht.training.speed import cpu_has_fast_bf16
from semg_hht.training.train import build_datamodule, build_model

CONF = Path(__file__).resolve().parents[1] / "conf"
BATCH = 16
# Per-epoch or logger-bound callbacks: not part of a training step.
SKIP_CALLBACKS = {
    "model_checkpoint", "last_checkpoint", "periodic_checkpoint", "rich_progress_bar", "lr_monitor",
    "confusion_matrix",
}  # fmt: skip


class StepTimer(L.Callback):
    """Wall time from the end of step ``warmup - 1`` to the end of the last step (one sync each)."""

    def __init__(self, warmup: int, device: torch.device):
        self.warmup, self.device = warmup, device
        self.start = self.end = None
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0 and self.warmup == 0:
            common.sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx == self.warmup - 1:
            common.sync(self.device)
            self.start = time.perf_counter()
        elif batch_idx >= self.warmup:
            self.steps += 1

    def on_train_end(self, trainer, pl_module):
        common.sync(self.device)
        self.end = time.perf_counter()


def compose_cfg(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides)


def ours_overrides(precision: str, device: torch.device, layers: int, data_dir: Path, out: Path) -> list[str]:
    if precision == "bf16":
        trainer = ["trainer=gpu"] if device.type == "cuda" else ["trainer=cpu_fast"]
    else:
        trainer = ["trainer=default", f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}"]
    return [
        *trainer,
        f"model.num_layers={layers}",
        f"data.batch_size={BATCH}",
        "data.augment.enabled=false",
        "data.load_workers=2",
        f"paths.data_dir={data_dir}",
        f"paths.output_dir={out}",
    ]


def run_ours(cfg, datamodule, steps: int, warmup: int, device: torch.device) -> float:
    L.seed_everything(0, workers=True)
    model = build_model(cfg, datamodule)
    timer = StepTimer(warmup, device)
    callbacks = [build(node) for name, node in cfg.callbacks.items() if name not in SKIP_CALLBACKS]
    trainer = build(
        cfg.trainer,
        callbacks=[*callbacks, timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=1,
        limit_train_batches=warmup + steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        plugins=None,
    )
    trainer.fit(model, datamodule=datamodule)
    assert timer.steps == steps, f"timed {timer.steps} steps, expected {steps}"
    return steps * BATCH / (timer.end - timer.start)


def run_seed(x, y, layers: int, precision: str, steps: int, warmup: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = seed_model(layers, n_classes=int(y.max()) + 1)
    times = train_steps(model, x, y, max_steps=warmup + steps, device=str(device), bf16=precision == "bf16")
    return steps * BATCH / sum(times[warmup:])


def train_flops_per_sample(layers: int) -> tuple[float, float]:
    """(forward MACs, forward + backward FLOPs) per 256x256 sample, counted on a batch of 2."""
    model = seed_model(layers)
    x = torch.rand(2, 1, 256, 256)
    with FlopCounterMode(display=False) as forward:
        model(x)
    with FlopCounterMode(display=False) as total:
        model(x).sum().backward()
    return forward.get_total_flops() / 2 / 2, total.get_total_flops() / 2


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, nargs="+", default=[3, 5, 7])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=3, help="timed steps (batches of 16) per run")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps at the start of every run")
    p.add_argument("--repeats", type=int, default=1, help="interleaved repetitions (best kept)")
    p.add_argument(
        "--bf16-layers",
        type=int,
        nargs="*",
        help="layers to run in bf16 (default: all; only the first without native bf16)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--table", help="append the rows (TSV) to this file for bench.all")
    a = p.parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    device = pick_device(a.device)
    slow_bf16 = device.type == "cpu" and not cpu_has_fast_bf16()
    peaks = {
        "fp32": common.matmul_peak(device, torch.float32),
        "bf16": common.matmul_peak(device, torch.bfloat16, n=512 if slow_bf16 else 2048),
    }
    bf16_layers = a.bf16_layers if a.bf16_layers is not None else (a.layers[:1] if slow_bf16 else a.layers)
    if slow_bf16 and "bf16" in a.precisions:
        print(f"this CPU has no native bf16 (emulated, very slow): bf16 only for layers {bf16_layers}", flush=True)
    print(
        f"device: {common.device_name(device)}; load average {common.load_avg()}; matmul peak "
        f"fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s; "
        f"{a.steps} timed steps of {BATCH} after {a.warmup} warm-up, best of {a.repeats}\n",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        n_train = BATCH * (a.warmup + a.steps)
        data_dir = common.synthetic_set(Path(tmp) / "data", int(n_train / 0.8) + 12)
        for layers in a.layers:
            macs, flops = train_flops_per_sample(layers)
            precisions = [pr for pr in a.precisions if pr == "fp32" or layers in bf16_layers]
            cfgs = {
                pr: compose_cfg(ours_overrides(pr, device, layers, data_dir, Path(tmp) / "run")) for pr in precisions
            }
            datamodule = build_datamodule(cfgs[precisions[0]])
            datamodule.setup("fit")
            x = datamodule.x[datamodule.train_index].numpy()
            y = datamodule.y[datamodule.train_index].numpy()
            best: dict[tuple[str, str], float] = {}
            for _ in range(a.repeats):
                for pr in precisions:  # interleaved: seed, ours, seed, ours ...
                    seed_sps = run_seed(x, y, layers, pr, a.steps, a.warmup, device)
                    best[pr, "seed"] = max(best.get((pr, "seed"), 0.0), seed_sps)
                    dm = build_datamodule(cfgs[pr])  # a fresh one per run, as train.py builds it
                    dm.setup("fit")
                    ours_sps = run_ours(cfgs[pr], dm, a.steps, a.warmup, device)
                    best[pr, "ours"] = max(best.get((pr, "ours"), 0.0), ours_sps)
            for pr in precisions:
                ours, seed = best[pr, "ours"], best[pr, "seed"]
                achieved = ours * flops
                name = (
                    "trainer=cpu_fast"
                    if pr == "bf16" and device.type == "cpu"
                    else "trainer=gpu"
                    if pr == "bf16"
                    else "fp32"
                )
                row = {
                    "bench": "train",
                    "config": f"{layers} layers {pr} ({name})",
                    "ours": ours,
                    "baseline": seed,
                    "ratio": ours / seed,
                    "unit": "samples/s",
                    "note": f"x seed fp32 {ours / best.get(('fp32', 'seed'), float('nan')):.2f}; "
                    f"{achieved / 1e9:.1f} GFLOP/s = {100 * achieved / peaks[pr]:.0f}% of {pr} matmul; "
                    f"{macs / 1e9:.2f} GMAC/sample fwd",
                    "load": common.load_avg(),
                }
                rows.append(row)
            common.print_table(rows[-len(precisions) :])
            print(flush=True)
    print("ours = this project (Lightning); baseline = the seed loop, same precision; ratio = ours / baseline")
    common.append_tsv(a.table, rows)
    return rows


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
