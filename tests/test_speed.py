"""Speed options: trainer=cpu_fast (bf16 + channels_last) still learns, the channels_last and
compile callbacks leave checkpoints unchanged, data.on_device, trainer=gpu (GPU tests), and the
data cache (hit, invalidation, atomic, never pickled)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch

from semg_hht.data import cache as cache_module
from semg_hht.data.cache import load_matrices_cached
from semg_hht.models.encoder import CNNEncoder
from semg_hht.models.loading import load_classifier
from semg_hht.training.speed import ChannelsLast, CompileEncoder
from semg_hht.training.train import build_datamodule, build_model, build_trainer, train
from tests.helpers import temp_writer

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ON_GPU = ("trainer=gpu", "trainer.accelerator=gpu")  # the accelerator again: TINY's value override beats the group
LEARN = [
    "trainer.max_epochs=8",
    "optimizer.lr=3e-3",
    "scheduler.warmup_epochs=0",
    "data.augment.enabled=false",
    "~callbacks.periodic_checkpoint",
]


def history(run_dir) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open() as f:
        return list(csv.DictReader(f))


def test_cpu_fast_is_bf16_autocast_with_channels_last(train_cfg):
    """Seen inside forward while trainer=cpu_fast trains: bf16 autocast on, convolutions computing
    in bf16, the encoder's weights and activations in channels_last memory format. (The saliency map
    after fit runs in float32 on purpose: gradients of the input, not training; it is left out here.)"""
    cfg = train_cfg("trainer=cpu_fast", "~callbacks.saliency")
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    seen = []

    def probe(conv, inputs, output):
        channels_last = torch.channels_last
        seen.append(
            (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), output.dtype,
             conv.weight.is_contiguous(memory_format=channels_last), output.is_contiguous(memory_format=channels_last))
        )  # fmt: skip

    model.encoder.blocks[1].conv.register_forward_hook(probe)
    trainer = build_trainer(cfg, [], max_epochs=1, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0)
    trainer.fit(model, datamodule)
    assert len(seen) >= 3 and set(seen) == {(True, torch.bfloat16, torch.bfloat16, True, True)}, seen


def test_bf16_training_still_learns_on_cpu(train_cfg, tmp_path):
    cfg = train_cfg("trainer=cpu_fast", *LEARN)
    assert build_trainer(cfg, []).precision == "bf16-mixed"  # Lightning's CPU bf16 autocast
    metrics = train(cfg)
    rows = history(tmp_path / "run")
    # the seed's head starts with logits of std ~4, so single epochs are noisy: judge the last three
    first, last = float(rows[0]["train/loss"]), min(float(r["train/loss"]) for r in rows[-3:])
    assert last < 0.8 * first, (first, last)
    assert max(float(r["train/acc"]) for r in rows[-3:]) > 0.5 and metrics["val/acc_best"] > 1 / 3


def test_channels_last_and_compile_leave_checkpoints_unchanged(train_cfg):
    cfg = train_cfg()
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    plain = build_model(cfg, datamodule).eval()
    fast = build_model(cfg, datamodule).eval()
    fast.load_state_dict(plain.state_dict())
    ChannelsLast(enabled=True).setup(None, fast, "fit")
    CompileEncoder(enabled=True, mode=None).setup(None, fast, "fit")  # compiles lazily: nothing runs here
    conv = fast.encoder.blocks[1].conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    state = fast.state_dict()
    assert list(state) == list(plain.state_dict()) and not any("_orig_mod" in k for k in state)
    reloaded = build_model(cfg, datamodule).eval()
    reloaded.load_state_dict(state)
    x = datamodule.x[:4]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), plain(x))
        torch.testing.assert_close(fast.head(fast.encoder.pool(fast.encoder.blocks(x)).flatten(1)), plain(x))


def test_on_device_is_a_no_op_on_the_cpu(train_cfg, tmp_path):
    """The same run with and without data.on_device ends in the same weights: the same logits."""
    models = {}
    for flag in ("false", "true"):
        out = tmp_path / f"on_device_{flag}"
        train(train_cfg(f"data.on_device={flag}", "trainer.max_epochs=1", f"paths.output_dir={out}"))
        models[flag] = load_classifier(out / "checkpoints" / "last.ckpt").model
    x = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(models["true"](x), models["false"](x), rtol=0, atol=0)


def test_fused_step_with_clipping_under_mixed_precision_falls_back_to_foreach(train_cfg):
    """trainer=gpu asks for a fused AdamW and keeps the default gradient clipping; Lightning refuses to
    clip for a step that unscales its own gradients under mixed precision (seen on an H200: the first
    step raised). CPU bf16 autocast takes the same path, so it is checked here."""
    cfg = train_cfg("trainer=cpu_fast", "+optimizer.fused=true", "trainer.max_epochs=1", "~callbacks.channels_last")
    assert cfg.trainer.gradient_clip_val
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    trainer = build_trainer(cfg, [])
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step > 0
    defaults = trainer.optimizers[0].defaults
    assert not defaults["fused"] and defaults["foreach"]


def test_a_training_step_reads_no_tensor_value_on_the_host(train_cfg, monkeypatch):
    """The CPU stand-in for the GPU test below, on this project's side of a step (augmentation,
    forward, loss, metrics, logging): turning a tensor into a Python value (bool, item, tolist) waits
    for the device on a GPU. An H200 caught one (MeanMetric's NaN check of the loss); here each such
    read raises. Not checked this way: mixup, whose mixing weight is drawn on the CPU by design, and
    torch's CPU Adam, which reads its step count on the host (on a GPU both are CPU tensors)."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("a tensor value was read on the host inside a training step")

    def no_host_reads(fn):
        def wrapped(*args, **kwargs):
            with monkeypatch.context() as patch:
                for name in ("__bool__", "item", "tolist", "__float__", "__int__"):
                    patch.setattr(torch.Tensor, name, refuse)
                return fn(*args, **kwargs)

        return wrapped

    cfg = train_cfg("trainer.max_epochs=1", "data.augment.enabled=true")
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    model.training_step = no_host_reads(model.training_step)
    datamodule.on_after_batch_transfer = no_host_reads(datamodule.on_after_batch_transfer)
    trainer = build_trainer(cfg, [])
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step > 0


# ------------------------------------------------------------------ GPU (skipped without CUDA)
@pytest.mark.gpu
@needs_cuda
def test_gpu_trainer_keeps_data_on_the_gpu_and_steps_without_host_syncs(train_cfg):
    import lightning as L

    cfg = train_cfg(
        *ON_GPU, "trainer.max_epochs=2", "callbacks.compile.enabled=false", "trainer.gradient_clip_val=null"
    )  # without clipping the step is fused (with it, foreach: test_fused_step_with_clipping_...)
    assert cfg.optimizer.fused and cfg.data.on_device and cfg.trainer.precision == "bf16-mixed"
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)

    class NoSync(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            assert batch[0].is_cuda and batch[0].device == pl_module.device
            torch.cuda.set_sync_debug_mode("error")  # any host sync inside the step raises

        def on_train_batch_end(self, *args):
            torch.cuda.set_sync_debug_mode("default")

    trainer = build_trainer(cfg, [NoSync()])
    try:
        trainer.fit(model, datamodule=datamodule)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.optimizers[0].defaults["fused"]
    assert model.encoder.blocks[1].conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.gpu
@needs_cuda
def test_compiled_gpu_run_writes_checkpoints_that_load_uncompiled(train_cfg, tmp_path):
    from semg_hht.models import HHTClassifier

    train(train_cfg(*ON_GPU, "trainer.max_epochs=1", "callbacks.compile.enabled=true"))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])
    model = HHTClassifier.load_from_checkpoint(tmp_path / "run/checkpoints/last.ckpt", map_location="cpu")
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 3)


# ------------------------------------------------------------------ data cache
@pytest.fixture
def files(synthetic_dir):
    return sorted(synthetic_dir.glob("*_*_*.npz"))


def test_cache_second_load_is_read_from_the_cache_and_identical(files, tmp_path, monkeypatch):
    first, errors = load_matrices_cached(files, 1, 32, "minmax", 2, tmp_path / "cache")
    assert not errors
    written = sorted(p.suffix for p in (tmp_path / "cache").iterdir())
    assert written == [".json", ".npy"]  # no temp files left behind
    npy = next((tmp_path / "cache").glob("*.npy"))
    assert np.array_equal(np.load(npy, allow_pickle=False), first)  # plain array, no pickle
    manifest = json.loads(next((tmp_path / "cache").glob("*.json")).read_text())
    assert len(manifest["files"]) == len(files) and manifest["shape"] == [len(files), 1, 32, 32]

    def no_reading(*args):
        raise AssertionError("read the .npz files despite a valid cache")

    monkeypatch.setattr(cache_module, "load_matrices", no_reading)
    second, _ = load_matrices_cached(files, 1, 32, "minmax", 2, tmp_path / "cache")
    assert np.array_equal(second, first) and second.flags.writeable


@pytest.mark.parametrize("change", ["touch", "rewrite", "settings", "file set", "cache damaged"])
def test_cache_is_invalidated_when_anything_changes(files, synthetic_dir, tmp_path, change):
    work = tmp_path / "data"
    work.mkdir()
    for f in files[:6]:
        (work / f.name).write_bytes(f.read_bytes())
    paths = sorted(work.glob("*.npz"))
    cache = tmp_path / "cache"
    before, _ = load_matrices_cached(paths, 1, 32, "minmax", 2, cache)
    normalize = "minmax"
    if change == "touch":
        st = paths[0].stat()
        os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    elif change == "rewrite":  # same size and mtime is not enough to fool it: size differs here
        np.savez(paths[0], hht=np.arange(32 * 32, dtype=np.float32).reshape(32, 32))
    elif change == "settings":
        normalize = "none"
    elif change == "file set":
        paths = paths[:-1]
    else:
        next(cache.glob("*.npy")).write_bytes(b"not an npy file")
    calls = []
    real = cache_module.load_matrices

    def counting(*args):
        calls.append(1)
        return real(*args)

    cache_module.load_matrices = counting
    try:
        after, _ = load_matrices_cached(paths, 1, 32, normalize, 2, cache)
    finally:
        cache_module.load_matrices = real
    assert calls == [1]  # rebuilt from the files
    fresh, _ = real(paths, 1, 32, normalize, 2)
    assert np.array_equal(after, fresh)
    if change == "rewrite":
        assert not np.array_equal(after[0], before[0])


def test_writing_a_cache_entry_removes_a_killed_runs_temp_copy(files, tmp_path):
    cache = tmp_path / "cache"
    dead, _ = temp_writer(cache / f"{'0' * 24}.npy", kill=True)  # kill -9 while caching a training set
    load_matrices_cached(files[:3], 1, 32, "minmax", 2, cache)
    assert not dead.exists() and sorted(p.suffix for p in cache.iterdir()) == [".json", ".npy"]


def test_a_set_with_unusable_files_is_not_cached(files, tmp_path):
    bad = tmp_path / "BICEPS_full_M_999.npz"
    bad.write_bytes(b"broken")
    _, errors = load_matrices_cached([*files[:3], bad], 1, 32, "minmax", 2, tmp_path / "cache")
    assert list(errors) == [3] and not (tmp_path / "cache").exists()


def test_datamodule_reads_through_the_cache_when_configured(train_cfg, tmp_path):
    plain = build_datamodule(train_cfg())
    plain.setup("fit")
    cached = build_datamodule(train_cfg(f"data.cache_dir={tmp_path / 'cache'}"))
    cached.setup("fit")
    again = build_datamodule(train_cfg(f"data.cache_dir={tmp_path / 'cache'}"))
    again.setup("fit")
    assert torch.equal(plain.x, cached.x) and torch.equal(plain.x, again.x)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_encoder_channels_last_runs_the_same_numbers():
    encoder = CNNEncoder(1, 32, 4, 3, "batch", 0.2, False, 6).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = encoder(x)
        ChannelsLast(enabled=True).setup(None, encoder, "fit")
        torch.testing.assert_close(encoder(x), expected)
