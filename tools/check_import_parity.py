#!/usr/bin/env python3
"""Tries the SMP import path as a user would, independently of the test fixtures:
an SMP UnetPlusPlus with torch-random weights and random BatchNorm statistics is
saved with safetensors.torch.save_file(model.state_dict()), imported with
`bonectl model import`, run with `bonectl segment --logits`, and compared with
PyTorch on the same radiograph, preprocessed as the competition baseline did
(gray → 3 channels, /255, bilinear resize with align_corners=False).
It also decodes the masks of `bonectl segment --out`'s CSV and compares them
with PyTorch's sigmoid(F.interpolate(logits, original size)) > 0.5.

    tools/.venv/bin/python tools/check_import_parity.py IMAGE.png [--bonectl .build/release/bonectl] [--only densenet121,tu-hrnet_w18]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

CASES = [
    ("resnet34", (256, 128, 64, 32, 16), 512),
    ("resnet18", (128, 64, 32, 16, 8), 256),
    ("densenet121", (256, 128, 64, 32, 16), 512),
    ("densenet201", (256, 128, 64, 32, 16), 512),
    ("tu-hrnet_w18", (256, 128, 64, 32, 16), 512),
]


def randomize(model, seed):
    """Weights from torch's own RNG (not the fixtures' generator) and non-trivial BN statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(p[0].numel()))
            elif name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)


def reference_input(path, size):
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        sys.exit(f"{path}: OpenCV cannot read it")
    if image.dtype == np.uint16:
        image = image.astype(np.float32) * (255.0 / 65535.0)
    image = image.astype(np.float32)
    if image.ndim == 3:
        if image.shape[2] == 4:
            alpha = image[:, :, 3:4] / 255.0
            image = image[:, :, :3] * alpha
        image = image[:, :, 0] * 0.114 + image[:, :, 1] * 0.587 + image[:, :, 2] * 0.299  # BGR
    x = torch.from_numpy(image / 255.0)[None, None].repeat(1, 3, 1, 1)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def original_size(path):
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    return image.shape[0], image.shape[1]


def read_csv(path):
    import csv
    csv.field_size_limit(1 << 30)  # RLE fields of noisy masks are long
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image_name", "class", "rle"], rows[0]
    return [r[2] for r in rows[1:]]


def decode_rle(rle, height, width):
    """The competition's reference decoder."""
    s = rle.split()
    starts, lengths = [np.asarray(x, dtype=int) for x in (s[0:][::2], s[1:][::2])]
    starts -= 1
    ends = starts + lengths
    img = np.zeros(height * width, dtype=np.uint8)
    for lo, hi in zip(starts, ends):
        img[lo:hi] = 1
    return img.reshape(height, width)


def main():
    import segmentation_models_pytorch as smp

    p = argparse.ArgumentParser()
    p.add_argument("image")
    p.add_argument("--bonectl", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "bonectl"))
    p.add_argument("--only", help="comma-separated encoders of CASES to run (default: all)")
    a = p.parse_args()
    torch.set_num_threads(2)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (encoder, decoder, size) in enumerate(CASES):
            if a.only and encoder not in a.only.split(","):
                continue
            model = smp.UnetPlusPlus(encoder, encoder_weights=None, classes=29, decoder_channels=decoder).eval()
            randomize(model, seed + 1)
            weights = os.path.join(tmp, f"{encoder}.safetensors")
            save_file(model.state_dict(), weights)
            store = os.path.join(tmp, "store")
            name = f"user-{encoder}"
            subprocess.run([a.bonectl, "model", "import", weights, "--name", name, "--arch", "unetplusplus", "--encoder", encoder,
                            "--input-size", str(size), "--decoder-channels", ",".join(map(str, decoder)), "--store", store], check=True)
            out = os.path.join(tmp, f"{encoder}.npy")
            results = os.path.join(tmp, f"{encoder}-results")
            subprocess.run([a.bonectl, "segment", a.image, "--model", name, "--store", store, "--logits", out,
                            "--out", results], check=True, stdout=subprocess.DEVNULL)
            ours = np.load(out)
            with torch.no_grad():
                logits = model(reference_input(a.image, size))
            theirs = logits.numpy()
            scale = np.abs(theirs).max()
            worst = np.abs(ours - theirs).max()
            ok = worst <= 1e-4 * scale
            # Masks at the original size from the CSV against PyTorch's postprocessing.
            height, width = original_size(a.image)
            with torch.no_grad():
                reference = (torch.sigmoid(F.interpolate(logits, size=(height, width), mode="bilinear",
                                                         align_corners=False)) > 0.5).numpy()[0]
            stem = os.path.splitext(os.path.basename(a.image))[0]
            rows = read_csv(os.path.join(results, stem + ".csv"))
            masks = np.stack([decode_rle(rle, height, width) for rle in rows])
            agreement = (masks == reference).mean()
            ok_masks = agreement >= 0.9999
            failed |= not (ok and ok_masks)
            print(f"{encoder} decoder={decoder} input={size}: max|Δ| = {worst:.3g}, max|logit| = {scale:.3g}, "
                  f"ratio = {worst / scale:.2e} {'OK' if ok else 'FAIL'}; CSV masks agree on {agreement * 100:.4f}% "
                  f"of {masks.size} pixels ({reference.mean() * 100:.1f}% foreground) {'OK' if ok_masks else 'FAIL'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
