#!/usr/bin/env python3
"""Makes the training-parity fixtures for Tests/TrainingTests (PyTorch + SMP 0.6).

A small UNet++-resnet18 (decoder 32,16,16,8,8, 5 classes) gets deterministic
weights from the generator in make_parity_fixtures.py (DeterministicFill in
Swift), a deterministic input [2, 3, 64, 64] ("train.input", uniform in [0, 1))
and random binary targets ("train.target", uniform < 0.3). Nothing but expected
values is committed; Swift rebuilds weights, input and targets itself.

Loss (Training/Loss.swift implements the same):
    p = sigmoid(z);  BCE = mean over every element of BCE-with-logits(z, t)
    Dice_c = 1 - (2 * sum_{n,h,w} p*t + 1) / (sum p + sum t + 1)   (per class, whole batch)
    loss = 0.5 * BCE + 0.5 * mean_c Dice_c

Sequence, in train mode (BatchNorm batch statistics, running stats updated):
    for step in 1...3: zero_grad; forward; loss; backward;
        (step 1 only: record every parameter's gradient)
        clip_grad_norm_(max_norm=MAX_NORM); AdamW(lr=1e-3, defaults).step()
    record the weights and the BatchNorm running statistics.

Gradients and weights are committed compactly: per tensor, max |value| and
sum, plus the values at SAMPLES indices (every element for tensors of at most
FULL elements); see sample_indices. Running statistics are committed in full.
The same sequence in float64 gives, per tensor, PyTorch float32's own distance
from exact-ish arithmetic, which the Swift 3-step test uses as its allowance
(Adam turns float32 rounding of gradients near eps into weight differences).
AdamW + clipping alone are also checked on given gradients (adamw_fixture).

Encoder gradient fixtures (encoder_gradient_fixtures, grad_<case>_*): one
forward + backward of UNet++ on densenet121, tu-hrnet_w18 and
resnet18 with encoder_depth=3, same weights/inputs/loss scheme with per-case
names. HRNet-w18 alone has 1031 parameter tensors, so to stay well under 1 MB
per case each gradient tensor is committed as: every value if it has at most
ENC_SAMPLES elements (ENC_SAMPLES_TRAIN for the train-mode reference), else
that many values at spread indices; plus, over the whole tensor, max |g|,
sum g, ||g||_2 and two projections sum r_k * g with r_k = +-1 from the
generator ("<key>.probe1", "<key>.probe2" < 0.5 -> -1),
so every element of every tensor enters the comparison.

    /root/venv-ref/bin/python tools/make_training_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity_fixtures import fill_state_dict, parameter, uniform  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures")

DECODER = (32, 16, 16, 8, 8)
CLASSES = 5
BATCH, HEIGHT, WIDTH = 2, 64, 64
LR = 1e-3
MAX_NORM = 0.2  # clips steps 1 and 2 (norms 0.38, 0.23), not step 3 (0.18)
STEPS = 3
SAMPLES = 24
FULL = 288


ENC_SAMPLES = 96
# Train-mode references are compared at the float32 runs' own spread (percent level for most
# tensors), where the whole-tensor aggregates carry the check: fewer samples keep HRNet's fixture small.
ENC_SAMPLES_TRAIN = 48
# (input jitter seed, threads) of the float32 runs whose worst distance from float64 is the train-mode yardstick.
# Sixteen: the distances are clustered (e.g. 6e-6, 9e-3, 1.3e-2, 2.7e-2 for one tensor), and the tail matters.
FLOAT32_RUNS = [(0, 1), (0, 2)] + [(j, 1 + j % 2) for j in range(1, 15)]
ENCODER_CASES = [
    # name, encoder, encoder_depth, decoder_channels, classes, (batch, height, width)
    ("densenet121", "densenet121", 5, (16, 16, 16, 8, 8), 2, (2, 64, 64)),
    ("hrnet_w18", "tu-hrnet_w18", 5, (16, 16, 16, 8, 8), 2, (2, 64, 64)),
    ("resnet18_depth3", "resnet18", 3, (16, 8, 8), 3, (2, 64, 96)),
]


def sample_indices(count, samples=None, full=None):
    """Every index for small tensors, else `samples` spread over the tensor (integer maths, as in Swift)."""
    samples, full = samples or SAMPLES, full or FULL
    if count <= full:
        return list(range(count))
    stride = count // samples
    return [j * stride + (j * 131 + 17) % stride for j in range(samples)]


def probe(key, k, count):
    """The +-1 vector of projection k for a tensor, from the shared generator."""
    return np.where(uniform(f"{key}.probe{k}", count) < np.float32(0.5), -1.0, 1.0)


def encoder_gradients(name, encoder, depth, decoder, classes, shape, dtype, train, jitter=0, threads=1):
    """(loss, [(key, grad)]) of one forward + backward, BatchNorm in train or eval mode;
    `jitter` > 0 multiplies the input by 1 + 1e-7 * N(0, 1) (seeded by jitter), float32
    rounding's own size, and `threads` changes PyTorch's summation order."""
    import segmentation_models_pytorch as smp
    torch.set_num_threads(threads)
    n, h, w = shape
    x = torch.from_numpy(uniform(f"grad.{name}.input", n * 3 * h * w).reshape(n, 3, h, w))
    if jitter:
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(jitter), dtype=torch.float64)
        x = (x.double() * (1 + 1e-7 * noise)).float()
    t = (uniform(f"grad.{name}.target", n * classes * h * w) < np.float32(0.3)).astype(np.float32)
    t = torch.from_numpy(t.reshape(n, classes, h, w))
    model = smp.UnetPlusPlus(encoder, encoder_weights=None, encoder_depth=depth, classes=classes, decoder_channels=decoder)
    fill_state_dict(model)
    model.to(dtype).train(train)
    loss = loss_fn(model(x.to(dtype)), t.to(dtype))
    loss.backward()
    # Parameters of stages a reduced depth never runs get no gradient: they are not part of the model.
    return loss.item(), [(k, p.grad.detach().clone()) for k, p in model.named_parameters() if p.grad is not None]


def compact_gradients(grads, count):
    """Per tensor [max|g|, sum, ||g||_2, two +-1 projections] and `count` sampled values (all up to `count`)."""
    stats, samples = [], []
    for key, g in grads:
        flat = g.reshape(-1).double().numpy()
        stats.append([np.abs(flat).max(), flat.sum(), np.sqrt((flat * flat).sum()),
                      (probe(key, 1, flat.size) * flat).sum(), (probe(key, 2, flat.size) * flat).sum()])
        samples.extend(flat[sample_indices(flat.size, count, count)])
    return np.array(stats, dtype=np.float32), np.array(samples, dtype=np.float32)


def encoder_gradient_fixtures():
    """Train-mode BatchNorm makes these deep networks chaotic at a deterministic
    initialisation: PyTorch float32 lands up to ~17 % of max|grad| (median 1-3 %)
    from PyTorch float64 on the same input, and two float32 runs that differ only
    in rounding (1 or 2 threads; the input moved by 1e-7 relative) land up to 20x
    apart in that distance, tensor by tensor: discrete ReLU and max-pool flips
    amplified through ~100 BatchNorm layers. Eval-mode BatchNorm is well
    conditioned (float32 within 6e-6 of float64). So each case commits two references:
      eval:  BatchNorm on its running statistics, PyTorch float32 gradients
             (every backward op of the encoder but the batch statistics; criterion 1e-3);
      train: BatchNorm on batch statistics, PyTorch float64 gradients, with the
             largest distance of FLOAT32_RUNS PyTorch float32 runs from them per tensor
             (grad_spread_train) as the yardstick of what float32 arithmetic reaches,
             unless one float32 run is within 1e-4 of float64 everywhere
             (train_well_conditioned: the ResNet), where the criterion is 1e-3."""
    for name, encoder, depth, decoder, classes, shape in ENCODER_CASES:
        losses, spreads, keys = {}, {}, None
        for mode in ("train", "eval"):
            args = (name, encoder, depth, decoder, classes, shape)
            loss32, g32 = encoder_gradients(*args, torch.float32, mode == "train")
            loss64, g64 = encoder_gradients(*args, torch.float64, mode == "train")
            assert keys is None or keys == [k for k, _ in g32]
            keys = [k for k, _ in g32]
            losses[mode] = (loss32, loss64)
            spreads[mode] = [spread(a, b) for (_, a), (_, b) in zip(g32, g64)]
            if mode == "train":
                # Well conditioned (the ResNet): the plain 1e-3 criterion applies in train mode too.
                well_conditioned = max(spreads[mode]) < 1e-4
                for jitter, threads in FLOAT32_RUNS[1:]:
                    _, other = encoder_gradients(*args, torch.float32, True, jitter=jitter, threads=threads)
                    spreads[mode] = [max(s, spread(a, b)) for s, (_, a), (_, b) in zip(spreads[mode], other, g64)]
            stats, samples = compact_gradients(g64, ENC_SAMPLES_TRAIN) if mode == "train" else compact_gradients(g32, ENC_SAMPLES)
            np.save(os.path.join(OUT, f"grad_{name}_{mode}_stats.npy"), stats)
            np.save(os.path.join(OUT, f"grad_{name}_{mode}_samples.npy"), samples)
        manifest = dict(encoder=encoder, encoder_depth=depth, decoder=list(decoder), classes=classes,
                        input=[shape[0], 3, shape[1], shape[2]], samples_eval=ENC_SAMPLES, samples_train=ENC_SAMPLES_TRAIN,
                        loss_train=losses["train"][0], loss_train_float64=losses["train"][1],
                        loss_eval=losses["eval"][0], loss_eval_float64=losses["eval"][1],
                        train_well_conditioned=well_conditioned, parameters=keys,
                        grad_spread_train=[float(f"{v:.4g}") for v in spreads["train"]],
                        grad_spread_eval=[float(f"{v:.4g}") for v in spreads["eval"]])
        path = os.path.join(OUT, f"grad_{name}_manifest.json")
        with open(path, "w") as f:
            json.dump(manifest, f, indent=0)
            f.write("\n")
        size = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT) if f.startswith(f"grad_{name}_"))
        print(f"{name}: {len(keys)} gradient tensors; float32 vs float64 worst: train {max(spreads['train']):.2e}, "
              f"eval {max(spreads['eval']):.2e}; fixture {size} bytes")


def inputs():
    x = uniform("train.input", BATCH * 3 * HEIGHT * WIDTH).reshape(BATCH, 3, HEIGHT, WIDTH)
    t = (uniform("train.target", BATCH * CLASSES * HEIGHT * WIDTH) < np.float32(0.3)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(t.reshape(BATCH, CLASSES, HEIGHT, WIDTH))


def loss_fn(z, t):
    bce = F.binary_cross_entropy_with_logits(z, t)
    p = torch.sigmoid(z)
    inter = (p * t).sum(dim=(0, 2, 3))
    total = p.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    dice = 1 - (2 * inter + 1) / (total + 1)
    return 0.5 * bce + 0.5 * dice.mean()


def compact(named):
    """(keys, per-tensor [max|v|, sum], concatenated samples)."""
    keys, stats, samples = [], [], []
    for key, v in named:
        flat = v.detach().reshape(-1).double()
        keys.append(key)
        stats.append([float(flat.abs().max()), float(flat.sum())])
        samples.extend(flat[sample_indices(flat.numel())].tolist())
    return keys, np.array(stats, dtype=np.float32), np.array(samples, dtype=np.float32)


def train(dtype):
    """The STEPS-step sequence in dtype; returns step-1 gradients, final state, losses, norms."""
    import segmentation_models_pytorch as smp
    model = smp.UnetPlusPlus("resnet18", encoder_weights=None, classes=CLASSES, decoder_channels=DECODER)
    fill_state_dict(model)
    model.to(dtype).train()
    x, t = (v.to(dtype) for v in inputs())
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    losses, norms, grads = [], [], None
    for step in range(STEPS):
        opt.zero_grad()
        loss = loss_fn(model(x), t)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            grads = [(k, p.grad.clone()) for k, p in model.named_parameters()]
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)))
        opt.step()
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    return grads, [k for k, _ in model.named_parameters()], state, losses, norms


def spread(a, b):
    """max |a - b| / max |b| of one tensor."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def adamw_fixture():
    """AdamW + clipping alone, on given gradients (well conditioned: every |g| >> eps):
    three tensors, three steps, clipping active in the first step only."""
    shapes = {"adamw.a.weight": [7, 5, 3, 3], "adamw.b.weight": [5], "adamw.c.bias": [11]}
    params = [torch.nn.Parameter(torch.from_numpy(parameter(k, s))) for k, s in shapes.items()]
    opt = torch.optim.AdamW(params, lr=1e-2)
    norms = []
    for step in range(3):
        for (key, shape), p in zip(shapes.items(), params):
            u = uniform(f"{key}.grad.{step}", int(np.prod(shape))).reshape(shape)
            g = (np.float32(2) * u - np.float32(1)) * np.float32(0.05 / (step + 1))
            p.grad = torch.from_numpy(np.where(np.abs(g) < 1e-4, np.float32(1e-4), g).astype(np.float32))
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, 0.5)))
        opt.step()
    np.save(os.path.join(OUT, "train_adamw_weights.npy"), np.concatenate([p.detach().numpy().ravel() for p in params]))
    return dict(keys=list(shapes), shapes=list(shapes.values()), lr=1e-2, max_norm=0.5, norms=norms)


def schedule_fixture():
    """OneCycleLR (defaults) on AdamW: the learning rate and beta1 used by each of 20 steps."""
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.AdamW([p], lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=20)
    rates, betas = [], []
    for _ in range(20):
        rates.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        p.grad = torch.ones(3)
        opt.step()
        sched.step()
    return dict(max_lr=1e-3, total_steps=20, lr=rates, beta1=betas)


def main():
    torch.set_num_threads(1)
    grads, keys, state, losses, norms = train(torch.float32)
    _, _, state64, losses64, norms64 = train(torch.float64)
    _, grad_stats, grad_samples = compact(grads)
    wkeys, weight_stats, weight_samples = compact((k, state[k]) for k in keys)
    assert wkeys == keys
    running_keys = [k for k in state if k.endswith(".running_mean") or k.endswith(".running_var")]
    running = np.concatenate([state[k].numpy().ravel() for k in running_keys])
    # How far float32 PyTorch lands from float64 PyTorch after the same steps: Adam
    # divides each gradient by its own running RMS, so entries whose gradient is near
    # eps (1e-8) amplify float32 rounding; this bounds what any float32 code can match.
    weight_spread = [spread(state[k], state64[k]) for k in keys]
    running_spread = [spread(state[k], state64[k]) for k in running_keys]
    os.makedirs(OUT, exist_ok=True)
    for name, array in [("grad_stats", grad_stats), ("grad_samples", grad_samples),
                        ("weight_stats", weight_stats), ("weight_samples", weight_samples),
                        ("running", running)]:
        np.save(os.path.join(OUT, f"train_{name}.npy"), np.ascontiguousarray(array, dtype=np.float32))
    manifest = dict(decoder=list(DECODER), classes=CLASSES, input=[BATCH, 3, HEIGHT, WIDTH], lr=LR,
                    max_norm=MAX_NORM, steps=STEPS, samples=SAMPLES, full=FULL,
                    losses=losses, grad_norms=norms, losses_float64=losses64, grad_norms_float64=norms64,
                    parameters=keys, running=running_keys,
                    weight_spread_float64=weight_spread, running_spread_float64=running_spread,
                    adamw=adamw_fixture(), one_cycle=schedule_fixture())
    with open(os.path.join(OUT, "train_manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("losses", losses, "float64", losses64)
    print("grad norms", norms, "float64", norms64)
    print("float32 vs float64 after the steps: worst weight", max(weight_spread), "running", max(running_spread))
    encoder_gradient_fixtures()


if __name__ == "__main__":
    main()
