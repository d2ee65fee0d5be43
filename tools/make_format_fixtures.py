#!/usr/bin/env python3
"""Makes the committed fixtures of Tests/CompetitionFormatTests/Fixtures.

The expected outputs come from independent implementations: the competition's
own RLE functions (below, verbatim), pandas' to_csv as the competition called
it, cv2.fillPoly for annotation masks, and numpy for votes and Dice. The Swift
tests check the Swift code against these files byte for byte (or to 1e-12 for
Dice). Everything is seeded, so a rerun gives the same files.

Run from the repository root with a Python that has numpy, opencv-python-headless
and pandas (the reference venv: /root/venv-ref/bin/pip install pandas):

    /root/venv-ref/bin/python tools/make_format_fixtures.py

It rewrites Tests/CompetitionFormatTests/Fixtures/ (about 0.2 MB). When the
real annotation sample exists at ../shared/data/annotation-sample (beside the
repository) it also records, per class, the pixel count and an FNV-1a 64 hash
of the RLE of cv2.fillPoly's mask; the coordinates themselves are not copied.
"""
import json
import os
import shutil
import sys

import cv2
import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "CompetitionFormatTests", "Fixtures")
REAL = os.path.join(ROOT, "..", "shared", "data", "annotation-sample", "ID001", "image1661130828152_R.json")

CLASSES = [f"finger-{i}" for i in range(1, 20)] + [
    "Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate",
    "Triquetrum", "Pisiform", "Radius", "Ulna",
]


# The competition's reference functions, exactly as published.
def encode_mask_to_rle(mask):
    pixels = mask.flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return ' '.join(str(x) for x in runs)


def decode_rle_to_mask(rle, height, width):
    s = rle.split()
    starts, lengths = [np.asarray(x, dtype=int) for x in (s[0:][::2], s[1:][::2])]
    starts -= 1
    ends = starts + lengths
    img = np.zeros(height * width, dtype=np.uint8)
    for lo, hi in zip(starts, ends):
        img[lo:hi] = 1
    return img.reshape(height, width)


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(value, list):  # one item a line: small files, readable diffs
            f.write("[\n" + ",\n".join(json.dumps(v, ensure_ascii=False) for v in value) + "\n]\n")
        else:
            json.dump(value, f, indent=1, ensure_ascii=False)
            f.write("\n")


def to_csv(path, image_names, classes, rles):
    # As the competition's inference notebook wrote its submission.
    df = pd.DataFrame({"image_name": image_names, "class": classes, "rle": rles})
    df.to_csv(path, index=False)


def read_csv(path):
    df = pd.read_csv(path, keep_default_na=False, dtype=str)
    return list(df["image_name"]), list(df["class"]), list(df["rle"])


def save_mask_png(path, mask):
    assert cv2.imwrite(path, mask.astype(np.uint8))


def blob(rng, h, w, cx, cy, r, n=40):
    """A wobbly closed shape: a star-ish polygon with random radii."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.6, 1.0, n)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).round().astype(np.int32)
    return pts


# ---------------------------------------------------------------- RLE vectors
def make_rle(rng):
    d = os.path.join(OUT, "rle")
    os.makedirs(d)
    cases = []

    def add(name, mask):
        png = f"{name}.png"
        save_mask_png(os.path.join(d, png), mask)
        cases.append({"name": name, "png": png, "width": int(mask.shape[1]), "height": int(mask.shape[0]),
                      "rle": encode_mask_to_rle(mask)})

    h, w = 5, 7
    add("empty", np.zeros((h, w), np.uint8))
    add("full", np.ones((h, w), np.uint8))
    m = np.zeros((h, w), np.uint8); m[2, 3] = 1; add("single_pixel", m)
    m = np.zeros((h, w), np.uint8); m[0, 0] = 1; add("first_pixel", m)
    m = np.zeros((h, w), np.uint8); m[-1, -1] = 1; add("last_pixel", m)
    m = np.zeros((h, w), np.uint8); m[0, 0] = 1; m[-1, -1] = 1; add("first_and_last", m)
    m = np.zeros((h, w), np.uint8); m[1, 4:] = 1; m[2, :3] = 1; add("run_across_rows", m)
    m = np.zeros((1, 1), np.uint8); add("one_by_one_empty", m)
    m = np.ones((1, 1), np.uint8); add("one_by_one_full", m)
    m = np.zeros((3, 11), np.uint8); m[:, ::2] = 1; add("alternating", m)
    for i, p in enumerate([0.03, 0.5, 0.97]):
        add(f"random_{i}", (rng.random((48, 64)) < p).astype(np.uint8))
    # A long uniform stretch then noise: exercises the 8-byte skipping at odd offsets.
    m = np.zeros((13, 67), np.uint8); m.flat[5:600] = 1; m.flat[601::3] = 1; add("long_runs", m)
    # Realistic bone-like masks: a 2048x2048 one and a downsized 512x512 one.
    big = np.zeros((2048, 2048), np.uint8)
    cv2.fillPoly(big, [blob(rng, 2048, 2048, 900, 1100, 380, 60)], 1)
    cv2.fillPoly(big, [blob(rng, 2048, 2048, 1400, 500, 150, 30)], 1)
    cv2.circle(big, (900, 1100), 90, 0, -1)  # a hole: two runs on some rows
    add("realistic_2048", big)
    add("realistic_512", cv2.resize(big, (512, 512), interpolation=cv2.INTER_NEAREST))
    write_json(os.path.join(d, "vectors.json"), cases)


# ---------------------------------------------------------------- CSV vectors
def make_csv(rng):
    d = os.path.join(OUT, "csv")
    os.makedirs(d)
    images = ["image1661130828152_R.png", "image1664155969209.png", 'we,ird "name".png', 'comma,only.png', ' space.png']
    names, classes, rles = [], [], []
    for img in images:
        for c in CLASSES:
            names.append(img)
            classes.append(c)
            if rng.random() < 0.3:
                rles.append("")
            else:
                m = (rng.random((16, 16)) < 0.2).astype(np.uint8)
                rles.append(encode_mask_to_rle(m))
    write_json(os.path.join(d, "rows.json"), [{"image_name": a, "class": b, "rle": c} for a, b, c in zip(names, classes, rles)])
    to_csv(os.path.join(d, "expected.csv"), names, classes, rles)


# ---------------------------------------------------------------- polygons
def make_polygons(rng):
    d = os.path.join(OUT, "polygons")
    os.makedirs(d)
    cases = []

    def add(kind, w, h, pts):
        pts = np.asarray(pts, np.int32).reshape(-1, 2)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [pts], 1)
        cases.append({"kind": kind, "width": w, "height": h, "points": pts.tolist(), "rle": encode_mask_to_rle(mask)})

    for _ in range(120):  # convex, inside the image
        w, h = int(rng.integers(8, 64)), int(rng.integers(8, 64))
        raw = rng.integers(0, [w, h], size=(int(rng.integers(3, 12)), 2)).astype(np.int32)
        hull = cv2.convexHull(raw).reshape(-1, 2)
        if rng.random() < 0.5:
            hull = hull[::-1]  # both orientations
        add("convex", w, h, hull)
    for _ in range(120):  # arbitrary: concave and self-intersecting
        w, h = int(rng.integers(8, 64)), int(rng.integers(8, 64))
        add("arbitrary", w, h, rng.integers(0, [w, h], size=(int(rng.integers(3, 14)), 2)))
    for _ in range(80):  # points outside the image: clipping
        w, h = int(rng.integers(8, 48)), int(rng.integers(8, 48))
        add("clipped", w, h, rng.integers(-30, [w + 30, h + 30], size=(int(rng.integers(3, 10)), 2)))
    for pts in ([[3, 3]], [[2, 2], [9, 5]], [[1, 1], [8, 1], [8, 1]], [[0, 0], [15, 0], [15, 9], [0, 9]],
                [[5, 2], [5, 2], [5, 2]], [[-5, -5], [-1, -9], [-3, -2]], [[0, 0], [100, 3], [50, 60]]):
        add("degenerate", 16, 10, pts)
    for _ in range(6):  # bone-sized shapes at full resolution
        cx, cy = rng.integers(300, 1750, size=2)
        add("bone_2048", 2048, 2048, blob(rng, 2048, 2048, int(cx), int(cy), int(rng.integers(40, 250)), int(rng.integers(15, 70))))
    write_json(os.path.join(d, "vectors.json"), cases)

    if os.path.exists(REAL):
        with open(REAL, encoding="utf-8") as f:
            ann = json.load(f)
        out = {}
        for a in ann["annotations"]:
            mask = np.zeros((2048, 2048), np.uint8)
            cv2.fillPoly(mask, [np.array(a["points"], np.int32)], 1)
            out[a["label"]] = {"area": int(mask.sum()), "rle_fnv1a64": fnv1a64(encode_mask_to_rle(mask))}
        write_json(os.path.join(d, "real_annotation_cv2.json"), {"file": "annotation-sample/ID001/image1661130828152_R.json",
                                                                 "classes": out})
    else:
        print("note: real annotation not found, real_annotation_cv2.json not written", file=sys.stderr)


# ---------------------------------------------------------------- ensemble
def seed_vote(masks):
    """The team's rule: only non-empty rows vote; keep >= n//2 votes, and never a pixel with 0 votes."""
    voting = [m for m in masks if m.any()]
    n = len(voting)
    if n == 0:
        return np.zeros_like(masks[0])
    votes = np.sum(voting, axis=0)
    return ((votes >= n // 2) & (votes >= 1)).astype(np.uint8)


def ensemble_expected(paths, sizes, rule, min_votes=None):
    tables = [read_csv(p) for p in paths]
    names, classes, _ = tables[0]
    out = []
    for i, (img, cls) in enumerate(zip(names, classes)):
        h, w = sizes(img)
        masks = []
        for t in tables:
            j = [k for k in range(len(t[0])) if t[0][k] == img and t[1][k] == cls][0]
            masks.append(decode_rle_to_mask(t[2][j], h, w))
        if rule == "seed":
            result = seed_vote(masks)
        else:
            k = min_votes if min_votes is not None else len(masks) // 2 + 1
            result = (np.sum(masks, axis=0) >= k).astype(np.uint8)
        out.append(encode_mask_to_rle(result))
    return names, classes, out


def make_ensemble(rng):
    d = os.path.join(OUT, "ensemble")
    os.makedirs(os.path.join(d, "images", "ID001"))
    images = {"image_a.png": (30, 40), "image_b.png": (35, 25)}  # (height, width): not square
    for name, (h, w) in images.items():
        cv2.imwrite(os.path.join(d, "images", "ID001", name), (rng.random((h, w)) * 255).astype(np.uint8))
    members = 5
    # Per class a base shape; members perturb it. Some members leave some rows empty
    # so that the seed rule sees every n from 0 to 5.
    rows = {m: ([], [], []) for m in range(members)}
    for name, (h, w) in images.items():
        for ci, cls in enumerate(CLASSES):
            base = np.zeros((h, w), np.uint8)
            cv2.fillPoly(base, [blob(rng, h, w, rng.integers(8, w - 8), rng.integers(8, h - 8), rng.integers(4, 9), 12)], 1)
            empties = ci % 6  # members 0..empties-1 leave the row empty
            for m in range(members):
                mask = base.copy()
                if m < empties:
                    mask[:] = 0
                else:
                    mask = np.roll(mask, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), (0, 1))
                    mask[rng.random((h, w)) < 0.03] ^= 1
                rows[m][0].append(name)
                rows[m][1].append(cls)
                rows[m][2].append(encode_mask_to_rle(mask))
    paths = []
    for m in range(members):
        p = os.path.join(d, f"member{m + 1}.csv")
        to_csv(p, *rows[m])
        paths.append(p)

    sizes = lambda img: images[img]
    for rule, k, out in (("majority", None, "expected_majority.csv"), ("majority", 1, "expected_min1.csv"),
                         ("majority", 4, "expected_min4.csv"), ("seed", None, "expected_seed.csv")):
        to_csv(os.path.join(d, out), *ensemble_expected(paths, sizes, rule, k))
    # Three members, square images of --size 16, default majority.
    sq = []
    for m in range(3):
        names, classes, rles = [], [], []
        for img in ("sq1.png", "sq2.png"):
            for cls in CLASSES:
                names.append(img)
                classes.append(cls)
                rles.append(encode_mask_to_rle((rng.random((16, 16)) < 0.4).astype(np.uint8)))
        p = os.path.join(d, f"square{m + 1}.csv")
        to_csv(p, names, classes, rles)
        sq.append(p)
    to_csv(os.path.join(d, "expected_square_majority.csv"), *ensemble_expected(sq, lambda img: (16, 16), "majority"))


# ---------------------------------------------------------------- eval
def annotation_json(polygons):
    return {"annotations": [{"id": f"id-{i}", "type": "poly_seg", "attributes": {}, "points": p.tolist(), "label": c}
                            for i, (c, p) in enumerate(polygons)],
            "attributes": {}, "file_id": "fixture", "filename": "fixture.jpg", "parent_path": "/fixture",
            "last_modifier_id": "fixture", "metadata": {"height": 3060, "width": 3060}}


def dice(a, b):
    inter = float(np.sum(a.astype(np.float64) * b))
    return (2.0 * inter + 1e-4) / (float(a.sum()) + float(b.sum()) + 1e-4)


def make_eval(rng):
    d = os.path.join(OUT, "eval")
    # (folder, stem, (h, w), png?) — ID002's image has no PNG: its size comes from --size 64.
    specs = [("ID001", "image_p", (50, 60), True), ("ID001", "image_q", (45, 70), True), ("ID002", "image_r", (64, 64), False)]
    names, classes, rles = [], [], []
    per_image = []
    for folder, stem, (h, w), has_png in specs:
        os.makedirs(os.path.join(d, "gt", "outputs_json", folder), exist_ok=True)
        polys = []
        scores = []
        for ci, cls in enumerate(CLASSES):
            pts = blob(rng, h, w, rng.integers(10, w - 10), rng.integers(10, h - 10), rng.integers(5, 10), 14)
            polys.append((cls, pts))
            gt = np.zeros((h, w), np.uint8)
            cv2.fillPoly(gt, [pts], 1)
            kind = ci % 4
            if kind == 0:
                pred = gt.copy()  # perfect
            elif kind == 1:
                pred = np.roll(gt, (1, 2), (0, 1))  # shifted
            elif kind == 2:
                pred = np.zeros_like(gt)  # missed
            else:
                pred = cv2.dilate(gt, np.ones((3, 3), np.uint8))  # too big
            names.append(f"{stem}.png")
            classes.append(cls)
            rles.append(encode_mask_to_rle(pred))
            scores.append(dice(gt, pred))
        write_json(os.path.join(d, "gt", "outputs_json", folder, f"{stem}.json"), annotation_json(polys))
        if has_png:
            os.makedirs(os.path.join(d, "gt", "DCM", folder), exist_ok=True)
            cv2.imwrite(os.path.join(d, "gt", "DCM", folder, f"{stem}.png"), (rng.random((h, w)) * 255).astype(np.uint8))
        per_image.append((stem, scores))
    to_csv(os.path.join(d, "pred.csv"), names, classes, rles)
    scores = np.array([s for _, s in per_image])  # images x classes
    per_class = scores.mean(axis=0)
    write_json(os.path.join(d, "expected.json"), {
        "size": 64,
        "images": len(per_image),
        "mean_dice": float(per_class.mean()),
        "per_class": {c: float(v) for c, v in zip(CLASSES, per_class)},
        "per_image": {stem: float(np.mean(s)) for stem, s in per_image},
    })


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    make_rle(np.random.default_rng(1))
    make_csv(np.random.default_rng(2))
    make_polygons(np.random.default_rng(3))
    make_ensemble(np.random.default_rng(4))
    make_eval(np.random.default_rng(5))
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
