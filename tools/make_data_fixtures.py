#!/usr/bin/env python3
"""Makes the CLAHE fixtures for Tests/TrainingTests/DataAugmentationTests.swift (OpenCV).

The training loader's local-contrast augmentation (Training/Data/Augmentation.swift,
LocalContrast.clahe) implements cv2.createCLAHE(clipLimit, tileGridSize).apply on
8-bit images. Each case below stores its input and OpenCV's output as float32
.npy of shape [H, W] (values 0..255):

    data_clahe_<case>_input.npy, data_clahe_<case>_output.npy

Cases cover an image that divides into the tile grid, one that does not (OpenCV
extends it by BORDER_REFLECT_101 for the histograms), a non-square grid, and a
clip limit low enough that redistribution leaves a residual.

    /root/venv-ref/bin/python tools/make_data_fixtures.py
"""
import json
import os

import cv2
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "TrainingTests", "Fixtures")

# (name, height, width, clip limit, (tiles x, tiles y))
CASES = [
    ("even", 64, 64, 2.0, (8, 8)),
    ("ragged", 53, 70, 2.0, (8, 8)),
    ("grid", 48, 90, 4.0, (5, 3)),
    ("lowclip", 40, 40, 0.7, (2, 2)),
]


def radiograph_like(height, width, seed):
    """Dark background, a bright smooth blob, texture and flat patches: histograms with tall bins to clip."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    blob = 150 * np.exp(-(((x - 0.55 * width) / (0.3 * width)) ** 2 + ((y - 0.45 * height) / (0.35 * height)) ** 2))
    image = 25 + blob + 0.5 * x + rng.normal(0, 6, size=(height, width))
    image[: height // 4, : width // 5] = 12  # a flat corner (film edge)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {}
    for k, (name, h, w, clip, grid) in enumerate(CASES):
        src = radiograph_like(h, w, seed=100 + k)
        dst = cv2.createCLAHE(clipLimit=clip, tileGridSize=grid).apply(src)
        np.save(os.path.join(OUT, f"data_clahe_{name}_input.npy"), src.astype(np.float32))
        np.save(os.path.join(OUT, f"data_clahe_{name}_output.npy"), dst.astype(np.float32))
        manifest[name] = {"clip_limit": clip, "tiles_x": grid[0], "tiles_y": grid[1]}
    with open(os.path.join(OUT, "data_clahe.json"), "w") as f:
        json.dump({"opencv": cv2.__version__, "cases": manifest}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
