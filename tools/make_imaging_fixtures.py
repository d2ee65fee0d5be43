#!/usr/bin/env python3
"""Makes the Imaging tests' fixtures in Tests/ImagingTests/Fixtures/.

1. Small synthetic PNGs in the colour types and layouts PNGCodec.encode cannot
   write (interlaced, 4-bit palette, 16-bit gray, gray+alpha), written by a tiny
   PNG writer here so every pixel follows a formula the Swift tests repeat.
2. Small JPEGs (gray, RGB, progressive RGB, CMYK) and what OpenCV decodes them
   to (jpeg-small.json), for exact-decoder tests and the truncation tests.
3. real-radiographs.json: for each real film in ../shared/data/real-radiographs
   its size, an FNV-1a 64 hash of the file (to notice a changed file), the
   image size, channels and depth, the sum of OpenCV's 8-bit gray over the
   whole image, and OpenCV's gray at 2048 positions drawn by splitmix64 (the
   Swift test draws the same ones). OpenCV's gray is
   cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2GRAY). The films themselves are
   never committed.

Run with the reference venv:  /root/venv-ref/bin/python tools/make_imaging_fixtures.py
"""
import base64
import io
import json
import os
import struct
import sys
import zlib

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "ImagingTests", "Fixtures")
REAL = os.path.join(ROOT, "..", "shared", "data", "real-radiographs")
SAMPLES = 2048
MASK64 = (1 << 64) - 1


# --- a minimal PNG writer ---------------------------------------------------

def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(values, bit_depth):
    """Packs one row of samples (already interleaved) at the given depth."""
    if bit_depth == 16:
        return b"".join(struct.pack(">H", v) for v in values)
    if bit_depth == 8:
        return bytes(values)
    per_byte = 8 // bit_depth
    out = bytearray()
    for i in range(0, len(values), per_byte):
        byte = 0
        group = values[i:i + per_byte]
        for j, v in enumerate(group):
            byte |= v << (8 - bit_depth * (j + 1))
        out.append(byte)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, width, height, color_type, bit_depth, pixel, interlace=False, palette=None):
    """pixel(x, y) -> tuple of samples for the colour type."""
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for (x0, y0, dx, dy) in passes:
        xs = list(range(x0, width, dx))
        if not xs:
            continue
        for y in range(y0, height, dy):
            values = [s for x in xs for s in pixel(x, y)]
            raw.append(0)  # filter: none
            raw += pack_row(values, bit_depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        data += chunk(b"PLTE", bytes(c for rgb in palette for c in rgb))
    data += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    data += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


# The formulas, repeated in Tests/ImagingTests/DecoderTests.swift.
PALETTE = [(0, 0, 0), (255, 0, 0), (0, 200, 0), (10, 20, 250), (128, 128, 128)]


def synthetic_pngs():
    write_png(os.path.join(OUT, "interlaced-gray8.png"), 13, 11, 0, 8,
              lambda x, y: ((x * 17 + y * 29) % 256,), interlace=True)
    write_png(os.path.join(OUT, "palette4.png"), 9, 7, 3, 4,
              lambda x, y: ((x + 2 * y) % 5,), palette=PALETTE)
    write_png(os.path.join(OUT, "gray16.png"), 7, 5, 0, 16,
              lambda x, y: ((x * 9000 + y * 7919) % 65536,))
    write_png(os.path.join(OUT, "gray-alpha8.png"), 6, 4, 4, 8,
              lambda x, y: (x * 40, y * 80))


# --- small JPEGs --------------------------------------------------------------

def small_jpegs():
    from PIL import Image  # only for the CMYK file, which OpenCV cannot write

    h, w = 30, 40
    yy, xx = np.mgrid[0:h, 0:w]
    gray = ((xx * 6 + yy * 3) % 256).astype(np.uint8)
    bgr = np.stack([(xx * 6) % 256, (yy * 8) % 256, ((xx + yy) * 4) % 256], axis=-1).astype(np.uint8)
    files = {
        "gray.jpg": cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes(),
        "rgb.jpg": cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes(),
        "rgb-progressive.jpg": cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92,
                                                          cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes(),
    }
    cmyk = Image.new("CMYK", (16, 8), (10, 20, 30, 40))
    buffer = io.BytesIO()
    cmyk.save(buffer, format="JPEG", quality=90)
    files["cmyk.jpg"] = buffer.getvalue()
    expected = {}
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        if name == "cmyk.jpg":
            continue
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if decoded.ndim == 3:
            decoded = decoded[..., ::-1]  # BGR -> RGB, the order JPEGCodec gives
        channels = 1 if decoded.ndim == 2 else decoded.shape[2]
        expected[name] = {
            "width": int(decoded.shape[1]), "height": int(decoded.shape[0]), "channels": channels,
            "samples": base64.b64encode(np.ascontiguousarray(decoded).tobytes()).decode(),
        }
    with open(os.path.join(OUT, "jpeg-small.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


# --- real radiographs ---------------------------------------------------------

def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def sample_positions(width, height, seed, count):
    state = seed
    out = []
    for _ in range(count):
        state, r = splitmix64(state)
        out.append(((r & 0xFFFFFFFF) % width, (r >> 32) % height))
    return out


def real_radiographs():
    if not os.path.isdir(REAL):
        print(f"skipping real radiographs: {REAL} is absent", file=sys.stderr)
        return
    entries = {}
    for name in sorted(os.listdir(REAL)):
        if name.endswith(".md"):
            continue
        path = os.path.join(REAL, name)
        data = open(path, "rb").read()
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        gray = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2GRAY)
        height, width = gray.shape
        seed = fnv1a64(name.encode())
        values = bytes(int(gray[y, x]) for (x, y) in sample_positions(width, height, seed, SAMPLES))
        entries[name] = {
            "bytes": len(data),
            "fnv1a64": f"{fnv1a64(data):016x}",
            "width": width, "height": height,
            "channels": 1 if raw.ndim == 2 else int(raw.shape[2]),
            "bitDepth": 16 if raw.dtype == np.uint16 else 8,
            "format": "JPEG" if data[:3] == b"\xff\xd8\xff" else "PNG",
            "graySum": int(gray.astype(np.int64).sum()),
            "sampleSeed": f"{seed:016x}",
            "samples": base64.b64encode(values).decode(),
        }
        print(f"{name}: {width}x{height}", file=sys.stderr)
    with open(os.path.join(OUT, "real-radiographs.json"), "w") as f:
        json.dump({"sampleCount": SAMPLES, "files": entries}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    synthetic_pngs()
    small_jpegs()
    real_radiographs()
