#!/usr/bin/env python3
"""Times one training step of SMP UnetPlusPlus in PyTorch the way
`bonectl bench --train-step` times ours: train mode (BatchNorm batch
statistics), forward, 0.5 * BCE-with-logits + 0.5 * Dice (smooth 1, per class
over the batch, as Sources/Training/Loss.swift), backward, AdamW step; WARMUP
untimed steps, then RUNS timed ones, min and median.

    /root/venv-ref/bin/python tools/bench_pytorch_train.py --encoder resnet34 --size 256 --batch 4 --threads 2 --runs 3
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F


def loss_fn(z, t):
    bce = F.binary_cross_entropy_with_logits(z, t)
    p = torch.sigmoid(z)
    inter = (p * t).sum(dim=(0, 2, 3))
    total = p.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    dice = 1 - (2 * inter + 1) / (total + 1)
    return 0.5 * bce + 0.5 * dice.mean()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--encoder", default="resnet34")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--classes", type=int, default=29)
    a = p.parse_args()
    import segmentation_models_pytorch as smp

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = smp.UnetPlusPlus(a.encoder, encoder_weights=None, classes=a.classes).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand(a.batch, 3, a.size, a.size)
    t = (torch.rand(a.batch, a.classes, a.size, a.size) < 0.05).float()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), t)
        loss.backward()
        optimizer.step()
        return loss.item()

    loss = None
    for _ in range(a.warmup):
        loss = step()
    times, cpu = [], []
    for _ in range(a.runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "encoder": a.encoder, "size": a.size,
                      "batch": a.batch, "threads": a.threads, "runs": a.runs, "warmup": a.warmup,
                      "seconds": times, "cpu_seconds": cpu, "min_seconds": min(times), "median_seconds": statistics.median(times),
                      "loss": loss, "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
