"""Benchmark: batched prediction samples/s, the path predict.py takes (frozen encoder in batches via
extract_features / run_batched, then the head), on the CPU and on the GPU when there is one.

    python -m bench.predict [--layers 5 7] [--n 64] [--batch 64] [--table FILE]

CPU rows are float32 (predict.py's CPU path); a GPU adds float32 and bf16 rows. The baseline is a
per-sample loop (batch 1), as a notebook would call the model on each file.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench import common
from semg_hht.models.encoder import CNNEncoder
from semg_hht.models.head import build_head
from semg_hht.models.inference import extract_features, run_batched


def model(layers: int) -> torch.nn.Module:
    encoder = CNNEncoder(1, 256, 64, layers, "batch", 0.2, False, 6)
    head = build_head("adaptive", encoder.feature_dim, 3, 0.5, 128)
    return torch.nn.ModuleDict({"encoder": encoder, "head": head}).eval().requires_grad_(False)


def predict_rate(m, x: torch.Tensor, batch: int, device: torch.device, bf16: bool) -> float:
    extract_features(m["encoder"], x[:batch], batch, device, bf16)  # warm-up
    common.sync(device)
    start = time.perf_counter()
    features = extract_features(m["encoder"], x, batch, device, bf16)
    torch.softmax(run_batched(m["head"], features, batch, device), dim=1)
    common.sync(device)
    return len(x) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, nargs="+", default=[5, 7])
    p.add_argument("--n", type=int, default=64, help="samples per measurement")
    p.add_argument("--batch", type=int, default=64, help="predict.py batch_size")
    p.add_argument("--table", help="append the rows (TSV) to this file for bench.all")
    a = p.parse_args(argv)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"load average {common.load_avg()}; devices: {[common.device_name(d) for d in devices]}\n", flush=True)
    x = torch.rand(a.n, 1, 256, 256)
    rows = []
    for layers in a.layers:
        m = model(layers)
        for device in devices:
            m.to(device)
            one = predict_rate(m, x[: max(4, a.n // 8)], 1, device, False)
            for bf16 in [False, True] if device.type == "cuda" else [False]:
                rate = predict_rate(m, x, a.batch, device, bf16)
                rows.append(
                    {
                        "bench": "predict",
                        "config": f"{layers} layers {device.type} {'bf16' if bf16 else 'fp32'} batch {a.batch}",
                        "ours": rate,
                        "baseline": one,
                        "ratio": rate / one,
                        "unit": "samples/s",
                        "note": "baseline: batch 1 fp32",
                        "load": common.load_avg(),
                    }
                )
    common.print_table(rows)
    common.append_tsv(a.table, rows)
    return rows


if __name__ == "__main__":
    main()
