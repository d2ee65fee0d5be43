#!/usr/bin/env python3
"""Makes the parity fixtures the Swift tests compare against (PyTorch + SMP 0.6).

Weights and inputs come from a deterministic generator that the Swift side
(TensorEngine/DeterministicFill.swift) reproduces bit for bit, so only small
inputs and expected outputs are committed.

    python3 -m venv tools/.venv && tools/.venv/bin/pip install -r tools/requirements.txt
    tools/.venv/bin/python tools/make_parity_fixtures.py

Writes Tests/TensorEngineTests/Fixtures/*.npy|.safetensors and Tests/ModelsTests/Fixtures/*.npy.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, "Tests", "TensorEngineTests", "Fixtures")
MODELS = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures")
SEGMENTATION = os.path.join(ROOT, "Tests", "SegmentationTests", "Fixtures")

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for b in text.encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def uniform(name, count):
    """SplitMix64 over FNV-1a(name); one 24-bit uniform in [0, 1) per element."""
    with np.errstate(over="ignore"):
        seed = np.uint64(fnv1a64(name))
        i = np.arange(1, count + 1, dtype=np.uint64)
        z = seed + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def parameter(name, shape):
    count = int(np.prod(shape)) if len(shape) else 1
    u = uniform(name, count)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        scale = np.float32(np.sqrt(3.0 / fan_in))
        v = (np.float32(2) * u - np.float32(1)) * scale
    elif name.endswith(".running_var") or name.endswith(".weight"):
        v = np.float32(0.5) + u
    else:
        v = (u - np.float32(0.5)) * np.float32(0.2)
    return v.astype(np.float32).reshape(shape)


def fill_state_dict(module):
    sd = module.state_dict()
    new = {}
    for key, value in sd.items():
        if key.endswith("num_batches_tracked"):
            new[key] = value
            continue
        new[key] = torch.from_numpy(parameter(key, list(value.shape)))
    module.load_state_dict(new)


def save(folder, name, array):
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, name + ".npy"), np.ascontiguousarray(array, dtype=np.float32))


def op_fixtures():
    # Convolutions: input "conv.input" [2, 5, 13, 11]; each case its own weights.
    x = torch.from_numpy(uniform("conv.input", 2 * 5 * 13 * 11).reshape(2, 5, 13, 11) * 2 - 1)
    save(ENGINE, "conv_input", x.numpy())
    cases = {
        "conv_3x3_s1_p1": dict(k=3, s=1, p=1, d=1, out=7),
        "conv_3x3_s2_p1": dict(k=3, s=2, p=1, d=1, out=6),
        "conv_3x3_s1_p2_d2": dict(k=3, s=1, p=2, d=2, out=4),
        "conv_1x1_s1": dict(k=1, s=1, p=0, d=1, out=9),
        "conv_1x1_s2": dict(k=1, s=2, p=0, d=1, out=8),
        "conv_7x7_s2_p3": dict(k=7, s=2, p=3, d=1, out=6),
    }
    for name, c in cases.items():
        w = torch.from_numpy(parameter(name + ".weight", [c["out"], 5, c["k"], c["k"]]))
        b = torch.from_numpy(parameter(name + ".bias", [c["out"]]))
        y = F.conv2d(x, w, b, stride=c["s"], padding=c["p"], dilation=c["d"])
        save(ENGINE, name, y.numpy())
    # Conv + BatchNorm (eval) to check folding.
    w = torch.from_numpy(parameter("convbn.conv.weight", [6, 5, 3, 3]))
    bn = torch.nn.BatchNorm2d(6).eval()
    for key in ["weight", "bias", "running_mean", "running_var"]:
        getattr(bn, key).data = torch.from_numpy(parameter("convbn.bn." + key, [6]))
    save(ENGINE, "convbn_3x3", bn(F.conv2d(x, w, None, padding=1)).detach().numpy())
    # Pools.
    save(ENGINE, "maxpool_3_s2_p1", F.max_pool2d(x, 3, 2, 1).numpy())
    save(ENGINE, "avgpool_2_s2", F.avg_pool2d(x, 2, 2).numpy())
    # Bilinear resize, align_corners=False, up and down, against PyTorch and OpenCV.
    for (h, w) in [(29, 17), (5, 4), (13, 11), (40, 33)]:
        y = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        save(ENGINE, f"bilinear_{h}x{w}", y.numpy())
    try:
        import cv2
        plane = x[0, 0].numpy()
        for (h, w) in [(29, 17), (5, 4)]:
            save(ENGINE, f"cv2_linear_{h}x{w}", cv2.resize(plane, (w, h), interpolation=cv2.INTER_LINEAR))
    except ImportError:
        print("opencv not installed: cv2 fixtures skipped", file=sys.stderr)
    # Nearest 2x upsample.
    save(ENGINE, "nearest_2x", F.interpolate(x, scale_factor=2.0, mode="nearest").numpy())
    # safetensors in F32, F16 and BF16, as torch writes them.
    from safetensors.torch import save_file
    a = torch.from_numpy(uniform("st.a", 12).reshape(3, 4) * 8 - 4)
    save_file({"a32": a, "a16": a.half(), "abf16": a.bfloat16(), "count": torch.tensor(7, dtype=torch.int64)},
              os.path.join(ENGINE, "dtypes.safetensors"), metadata={"format": "pt"})
    save(ENGINE, "dtypes_f16", a.half().float().numpy())
    save(ENGINE, "dtypes_bf16", a.bfloat16().float().numpy())


def encode_rle(mask):
    """The competition's reference encoder."""
    pixels = mask.flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def postprocess_fixtures():
    """Logits → F.interpolate(bilinear, align_corners=False) → sigmoid → > 0.5 → RLE,
    for one model and for a soft ensemble of two members at different resolutions."""
    os.makedirs(SEGMENTATION, exist_ok=True)
    a = torch.from_numpy((uniform("post.a", 29 * 24 * 24).reshape(1, 29, 24, 24) - 0.5) * 8)
    b = torch.from_numpy((uniform("post.b", 29 * 16 * 16).reshape(1, 29, 16, 16) - 0.5) * 8)
    save(SEGMENTATION, "post_a", a.numpy())
    save(SEGMENTATION, "post_b", b.numpy())
    height, width = 97, 131

    def masks(logits):
        up = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        return (torch.sigmoid(up) > 0.5).numpy()[0].astype(np.uint8)

    single = masks(a)
    b_up = F.interpolate(b, size=(24, 24), mode="bilinear", align_corners=False)
    soft = masks((a + b_up) / 2)
    with open(os.path.join(SEGMENTATION, "post_expected.txt"), "w") as f:
        for name, m in [("single", single), ("soft", soft)]:
            for c in range(29):
                f.write(f"{name},{c},{encode_rle(m[c])}\n")


def model_fixtures():
    import segmentation_models_pytorch as smp
    cases = [
        ("unetpp_resnet18", "resnet18", (256, 128, 64, 32, 16), 64, 64),
        ("unetpp_resnet34", "resnet34", (256, 128, 64, 32, 16), 64, 96),
        ("unetpp_resnet18_small", "resnet18", (128, 64, 32, 16, 8), 32, 64),
    ]
    for name, encoder, decoder, h, w in cases:
        model = smp.UnetPlusPlus(encoder, encoder_weights=None, classes=29, decoder_channels=decoder).eval()
        fill_state_dict(model)
        x = torch.from_numpy(uniform(name + ".input", 3 * h * w).reshape(1, 3, h, w))
        with torch.no_grad():
            y = model(x)
        save(MODELS, name + "_input", x.numpy())
        save(MODELS, name + "_logits", y.numpy())
        print(name, tuple(y.shape), "max|logit| =", float(y.abs().max()))


def depth_fixtures():
    """UNet++-resnet18 with encoder_depth=3 (decoder 32,16,8): SMP still builds and
    saves layer3/layer4, which its forward never runs. 8 classes keep the logits
    small; the Swift test regenerates the input from "<name>.input"."""
    import segmentation_models_pytorch as smp
    name, h, w = "unetpp_resnet18_depth3", 64, 96
    model = smp.UnetPlusPlus("resnet18", encoder_weights=None, encoder_depth=3, classes=8,
                             decoder_channels=(32, 16, 8)).eval()
    fill_state_dict(model)
    x = torch.from_numpy(uniform(name + ".input", 3 * h * w).reshape(1, 3, h, w))
    with torch.no_grad():
        y = model(x)
    save(MODELS, name + "_logits", y.numpy())
    print(name, tuple(y.shape), "max|logit| =", float(y.abs().max()))


def encoder_fixtures():
    """DenseNet and timm HRNet encoders under UNet++. Only the expected logits are
    committed (2 classes to keep them small); the Swift test regenerates the input
    from "<name>.input" with the same generator."""
    import segmentation_models_pytorch as smp
    cases = [
        ("unetpp_densenet121", "densenet121", (256, 128, 64, 32, 16), 2, 64, 64),
        ("unetpp_hrnet_w18", "tu-hrnet_w18", (256, 128, 64, 32, 16), 2, 64, 64),
    ]
    for name, encoder, decoder, classes, h, w in cases:
        model = smp.UnetPlusPlus(encoder, encoder_weights=None, classes=classes, decoder_channels=decoder).eval()
        fill_state_dict(model)
        x = torch.from_numpy(uniform(name + ".input", 3 * h * w).reshape(1, 3, h, w))
        with torch.no_grad():
            y = model(x)
        save(MODELS, name + "_logits", y.numpy())
        print(name, tuple(y.shape), "max|logit| =", float(y.abs().max()))


if __name__ == "__main__":
    torch.manual_seed(0)
    torch.set_num_threads(1)
    op_fixtures()
    postprocess_fixtures()
    model_fixtures()
    depth_fixtures()
    encoder_fixtures()
