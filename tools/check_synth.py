#!/usr/bin/env python3
"""Check a `bonectl synth` data set with nothing but Python's json and csv (run by hand).

    python3 tools/check_synth.py DIR                 # layout, schema, labels, metadata
    python3 tools/check_synth.py DIR --example OUT.png [--stem STEM]
                                                      # side-by-side picture (needs Pillow)

Exits non-zero and prints one line per problem, naming the file.
"""
import csv
import json
import os
import re
import sys

LABELS = [f"finger-{i}" for i in range(1, 20)] + [
    "Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum", "Pisiform", "Radius", "Ulna"]
TOP_KEYS = {"annotations", "attributes", "file_id", "filename", "parent_path", "last_modifier_id", "metadata"}
ANN_KEYS = {"id", "type", "attributes", "points", "label"}
STEM = re.compile(r"^image\d{13}_[LR]$")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(33)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    w = int.from_bytes(head[16:20], "big")
    h = int.from_bytes(head[20:24], "big")
    bit_depth, colour = head[24], head[25]
    return w, h, bit_depth, colour


def check(root):
    problems = []
    dcm, js = os.path.join(root, "DCM"), os.path.join(root, "outputs_json")
    ids = sorted(os.listdir(dcm))
    images = 0
    for ident in ids:
        if not re.fullmatch(r"ID\d{3,}", ident):
            problems.append(f"{dcm}/{ident}: folder name is not IDnnn")
            continue
        pngs = sorted(f for f in os.listdir(os.path.join(dcm, ident)) if f.endswith(".png"))
        jsons = sorted(f for f in os.listdir(os.path.join(js, ident)) if f.endswith(".json"))
        if [p[:-4] for p in pngs] != [j[:-5] for j in jsons]:
            problems.append(f"{dcm}/{ident}: PNG and JSON stems differ")
        if len(pngs) > 2:
            problems.append(f"{dcm}/{ident}: {len(pngs)} images, expected at most 2")
        for png in pngs:
            images += 1
            stem = png[:-4]
            if not STEM.match(stem):
                problems.append(f"{dcm}/{ident}/{png}: name is not image<13 digits>_L|_R")
            w, h, depth, colour = png_size(os.path.join(dcm, ident, png))
            if depth != 8 or colour != 0:
                problems.append(f"{dcm}/{ident}/{png}: not 8-bit gray (depth {depth}, colour type {colour})")
            path = os.path.join(js, ident, stem + ".json")
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            if set(doc) != TOP_KEYS:
                problems.append(f"{path}: top-level keys {sorted(doc)}")
            labels = []
            for a in doc["annotations"]:
                if set(a) != ANN_KEYS:
                    problems.append(f"{path}: annotation keys {sorted(a)}")
                if a["type"] != "poly_seg":
                    problems.append(f"{path}: {a['label']} has type {a['type']}")
                pts = a["points"]
                if len(pts) < 3 or not all(len(p) == 2 and all(isinstance(c, int) for c in p) for p in pts):
                    problems.append(f"{path}: {a['label']} points are not >= 3 integer [x, y] pairs")
                elif not all(0 <= x < w and 0 <= y < h for x, y in pts):
                    problems.append(f"{path}: {a['label']} has points outside {w}x{h}")
                labels.append(a["label"])
            if sorted(labels) != sorted(LABELS):
                problems.append(f"{path}: labels are not the 29 classes once each")
    with open(os.path.join(root, "meta_data.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    with open(os.path.join(root, "meta_data.csv"), "rb") as f:
        if b"\r\n" not in f.read():
            problems.append(f"{root}/meta_data.csv: lines do not end in CRLF like the real file")
    if rows[0] != ["ID", "나이", "성별", "체중(몸무게)", "키(신장)"]:
        problems.append(f"{root}/meta_data.csv: header {rows[0]}")
    if [r[0] for r in rows[1:]] != [i[2:] for i in ids]:
        problems.append(f"{root}/meta_data.csv: IDs do not match the DCM folders")
    for r in rows[1:]:
        age, gender, weight, height = float(r[1]), r[2], float(r[3]), float(r[4])
        if not (18 <= age <= 90 and gender in ("_x0008_남", "_x0008_여") and 35 <= weight <= 130 and 140 <= height <= 200):
            problems.append(f"{root}/meta_data.csv: implausible row {r}")
    return images, len(ids), problems


def example(root, out, stem=None):
    from PIL import Image, ImageDraw
    found = None
    for ident in sorted(os.listdir(os.path.join(root, "DCM"))):
        for png in sorted(os.listdir(os.path.join(root, "DCM", ident))):
            if stem is None or png[:-4] == stem:
                found = (ident, png[:-4])
                break
        if found:
            break
    ident, stem = found
    img = Image.open(os.path.join(root, "DCM", ident, stem + ".png")).convert("L")
    with open(os.path.join(root, "outputs_json", ident, stem + ".json"), encoding="utf-8") as f:
        doc = json.load(f)
    import colorsys
    side = 512
    scale = side / img.width
    small = img.resize((side, side), Image.LANCZOS)
    # One palette: 224 grays for the radiograph, 29 colours for the outlines, white.
    grays = 224
    palette = []
    for i in range(grays):
        v = round(i * 255 / (grays - 1))
        palette += [v, v, v]
    for k in range(29):
        r, g, b = colorsys.hsv_to_rgb(((k * 47) % 360) / 360, 0.9, 1.0)
        palette += [int(r * 255), int(g * 255), int(b * 255)]
    palette += [255, 255, 255] * (256 - grays - 29)
    index = small.point(lambda v: round(v * (grays - 1) / 255))
    both = Image.new("P", (2 * side + 8, side), 255)
    both.putpalette(palette)
    both.paste(index, (0, 0))
    both.paste(index, (side + 8, 0))
    draw = ImageDraw.Draw(both)
    for k, a in enumerate(doc["annotations"]):
        pts = [(x * scale + side + 8, y * scale) for x, y in a["points"]]
        draw.line(pts + pts[:1], fill=grays + k, width=2)
    both.save(out, optimize=True)
    print(f"wrote {out} from {ident}/{stem}")


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    root = args[0]
    if "--example" in args:
        out = args[args.index("--example") + 1]
        stem = args[args.index("--stem") + 1] if "--stem" in args else None
        example(root, out, stem)
        return 0
    images, ids, problems = check(root)
    for p in problems:
        print(p)
    print(f"{images} images in {ids} IDs checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
