"""The seed's training loop (seeds/000, train_action_quality_model), re-implemented faithfully for
benchmarks: its model classes (ImprovedConvBlock, ExpandedCNNEncoder, ActionQualityCNN, minus the
console prints), LabelSmoothingCrossEntropy, AdamW + LambdaLR warmup/cosine + ReduceLROnPlateau,
numpy -> CPU TensorDataset -> DataLoader(batch 16, shuffle, num_workers=0, pin_memory=True),
clip_grad_norm_(1.0), fp32, and ``.item()`` (a host sync) on every step with a tqdm postfix.

Kept out on purpose, since they are not per-step work: checkpoint saving, the history plot, resume.
``bf16=True`` wraps forward + loss in torch.autocast (the "seed + bf16 autocast" row of the issue);
the seed itself has no such switch. ``step_times`` gives the benchmark the time of every step.
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

# The seed's settings (its config cell)
ACTION_BATCH_SIZE = 16
ACTION_LEARNING_RATE = 0.0001
ACTION_WEIGHT_DECAY = 1e-4
ACTION_WARMUP_EPOCHS = 5
ACTION_GRAD_CLIP = 1.0
LR_SCHEDULER_FACTOR = 0.5
LR_SCHEDULER_PATIENCE = 7
LR_SCHEDULER_MIN_LR = 1e-6


class ImprovedConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=2, padding=1, use_residual=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activation = nn.LeakyReLU(0.2, inplace=True)
        self.use_residual = use_residual and (in_channels == out_channels) and (stride == 1)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="leaky_relu")

    def forward(self, x):
        identity = x
        out = self.activation(self.bn(self.conv(x)))
        if self.use_residual:
            out = out + identity
        return out


class ExpandedCNNEncoder(nn.Module):
    def __init__(self, in_channels=1, base_channels=64, num_layers=7):
        super().__init__()
        if not 1 <= num_layers <= 8:
            raise ValueError(f"num_layers must be in 1..8, got {num_layers}")
        channels = [base_channels * 2 ** min(i, 5) for i in range(num_layers)]
        layers, current = [], in_channels
        for i, out in enumerate(channels):
            stride = 2 if i < min(num_layers, 8) else 1
            layers.append(ImprovedConvBlock(current, out, 3, stride, 1, use_residual=(i >= 5 and current == out)))
            current = out
        self.encoder = nn.Sequential(*layers)
        self.global_avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_dim = channels[-1]

    def forward(self, x):
        x = self.global_avg_pool(self.encoder(x))
        return x.view(x.size(0), -1)

    def get_feature_dim(self):
        return self.feature_dim


class ActionQualityCNN(nn.Module):
    def __init__(self, encoder, n_classes=3, dropout_rate=0.5):
        super().__init__()
        self.encoder = encoder
        d = encoder.get_feature_dim()
        h1, h2 = min(max(256, d // 2), 1024), min(max(128, d // 4), 512)
        self.classifier = nn.Sequential(
            nn.Linear(d, h1), nn.BatchNorm1d(h1), nn.ReLU(inplace=True), nn.Dropout(dropout_rate),
            nn.Linear(h1, h2), nn.BatchNorm1d(h2), nn.ReLU(inplace=True), nn.Dropout(dropout_rate),
            nn.Linear(h2, n_classes),
        )  # fmt: skip
        for m in self.classifier.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        return self.classifier(self.encoder(x))


class LabelSmoothingCrossEntropy(nn.Module):
    def __init__(self, smoothing=0.1):
        super().__init__()
        self.smoothing = smoothing

    def forward(self, pred, target):
        n_classes = pred.size(-1)
        log_preds = F.log_softmax(pred, dim=-1)
        with torch.no_grad():
            true_dist = torch.zeros_like(log_preds)
            true_dist.fill_(self.smoothing / (n_classes - 1))
            true_dist.scatter_(1, target.unsqueeze(1), 1.0 - self.smoothing)
        return torch.mean(torch.sum(-true_dist * log_preds, dim=-1))


def get_lr_schedule(optimizer, warmup_epochs, total_epochs):
    def lr_lambda(epoch):
        if epoch < warmup_epochs:
            return (epoch + 1) / warmup_epochs
        progress = (epoch - warmup_epochs) / (total_epochs - warmup_epochs)
        return 0.5 * (1.0 + np.cos(np.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


def seed_model(num_layers: int, n_classes: int = 3, base_channels: int = 64, in_channels: int = 1) -> nn.Module:
    return ActionQualityCNN(ExpandedCNNEncoder(in_channels, base_channels, num_layers), n_classes, 0.5)


def train_steps(
    model: nn.Module,
    X_train: np.ndarray,
    y_train: np.ndarray,
    *,
    max_steps: int,
    device: str = "cpu",
    bf16: bool = False,
    epochs: int = 100,
) -> list[float]:
    """The seed's epoch loop, stopped after ``max_steps`` optimizer steps; returns each step's
    wall time (seconds, from fetching the batch to the end of its bookkeeping)."""
    model = model.to(device)
    if X_train.ndim == 3:
        X_train = X_train[:, np.newaxis, :, :]
    train_dataset = torch.utils.data.TensorDataset(
        torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.long)
    )
    train_loader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=ACTION_BATCH_SIZE,
        shuffle=True,
        num_workers=0,
        pin_memory=True,  # as the seed (ignored, with a warning, when there is no GPU)
    )
    criterion = LabelSmoothingCrossEntropy(smoothing=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=ACTION_LEARNING_RATE, weight_decay=ACTION_WEIGHT_DECAY)
    scheduler = get_lr_schedule(optimizer, ACTION_WARMUP_EPOCHS, epochs)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=LR_SCHEDULER_FACTOR, patience=LR_SCHEDULER_PATIENCE, min_lr=LR_SCHEDULER_MIN_LR
    )
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16)
    times: list[float] = []
    for _epoch in range(epochs):
        model.train()
        train_loss, train_correct, train_total = 0.0, 0, 0
        pbar = tqdm(train_loader, file=io.StringIO(), mininterval=0)  # the seed's bar, not on the terminal
        start = time.perf_counter()
        for batch_X, batch_y in pbar:
            batch_X = batch_X.to(device, non_blocking=True)
            batch_y = batch_y.to(device, non_blocking=True)
            optimizer.zero_grad()
            with autocast:
                outputs = model(batch_X)
                loss = criterion(outputs, batch_y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), ACTION_GRAD_CLIP)
            optimizer.step()
            train_loss += loss.item() * batch_X.size(0)
            _, predicted = outputs.max(1)
            train_total += batch_y.size(0)
            train_correct += predicted.eq(batch_y).sum().item()
            pbar.set_postfix({"loss": f"{loss.item():.4f}", "acc": f"{100.0 * train_correct / train_total:.2f}%"})
            now = time.perf_counter()
            times.append(now - start)
            start = now
            if len(times) == max_steps:
                return times
        # (validation, checkpoints and history are per epoch: the benchmark stops before them)
        scheduler.step()
        plateau.step(train_correct / max(1, train_total))
    return times
