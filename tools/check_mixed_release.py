#!/usr/bin/env python3
"""Tries a release that mixes encoders, as a user would: SMP UnetPlusPlus on
tu-hrnet_w18, densenet121 and resnet34 (bonectl's deterministic random weights,
loaded into PyTorch from the same .safetensors), imported with `bonectl model
import`, combined by `bonectl release create --combine soft|hard` and run with
`bonectl segment --release`. Soft: the release's logits against PyTorch's mean
of the members' logits (≤ 1e-4 × max |logit|). Hard: the CSV masks against
PyTorch's per-pixel strict-majority vote of the members' masks at the original
size (≥ 99.99 % of pixels).

    tools/.venv/bin/python tools/check_mixed_release.py IMAGE.png [--bonectl .build/release/bonectl]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_import_parity import decode_rle, original_size, read_csv, reference_input  # noqa: E402

ENCODERS = ["tu-hrnet_w18", "densenet121", "resnet34"]
DECODER = (64, 32, 32, 16, 16)
SIZE = 256


def main():
    import segmentation_models_pytorch as smp

    p = argparse.ArgumentParser()
    p.add_argument("image")
    p.add_argument("--bonectl", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "bonectl"))
    a = p.parse_args()
    torch.set_num_threads(2)
    decoder = ",".join(map(str, DECODER))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        logits = []
        x = reference_input(a.image, SIZE)
        for encoder in ENCODERS:
            weights = os.path.join(tmp, f"{encoder}.safetensors")
            subprocess.run([a.bonectl, "model", "random-weights", "--encoder", encoder, "--decoder-channels", decoder,
                            "--out", weights], check=True, stdout=subprocess.DEVNULL)
            subprocess.run([a.bonectl, "model", "import", weights, "--name", f"mix-{encoder}", "--encoder", encoder,
                            "--decoder-channels", decoder, "--input-size", str(SIZE), "--store", store],
                           check=True, stdout=subprocess.DEVNULL)
            model = smp.UnetPlusPlus(encoder, encoder_weights=None, classes=29, decoder_channels=DECODER).eval()
            missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
            assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
            with torch.no_grad():
                logits.append(model(x))
        members = ",".join(f"mix-{e}" for e in ENCODERS)
        height, width = original_size(a.image)
        stem = os.path.splitext(os.path.basename(a.image))[0]
        for mode in ["soft", "hard"]:
            subprocess.run([a.bonectl, "release", "create", f"mix-{mode}", "--members", members, "--combine", mode,
                            "--store", store], check=True, stdout=subprocess.DEVNULL)
            out = os.path.join(tmp, f"{mode}.npy")
            results = os.path.join(tmp, f"{mode}-results")
            subprocess.run([a.bonectl, "segment", a.image, "--release", f"mix-{mode}", "--store", store,
                            "--logits", out, "--out", results], check=True, stdout=subprocess.DEVNULL)
            masks = np.stack([decode_rle(r, height, width) for r in read_csv(os.path.join(results, stem + ".csv"))])
            with torch.no_grad():
                member_masks = [(torch.sigmoid(F.interpolate(l, size=(height, width), mode="bilinear",
                                                             align_corners=False)) > 0.5).numpy()[0] for l in logits]
            if mode == "soft":
                reference_logits = torch.stack(logits).mean(0)
                ours = np.load(out)
                scale = float(reference_logits.abs().max())
                worst = float(np.abs(ours - reference_logits.numpy()).max())
                ok = worst <= 1e-4 * scale
                with torch.no_grad():
                    reference = (torch.sigmoid(F.interpolate(reference_logits, size=(height, width), mode="bilinear",
                                                             align_corners=False)) > 0.5).numpy()[0]
                detail = f"max|Δ| = {worst:.3g}, max|logit| = {scale:.3g}, ratio = {worst / scale:.2e}; "
            else:
                votes = sum(m.astype(np.int32) for m in member_masks)
                reference = votes * 2 > len(ENCODERS)
                ok = True
                detail = ""
            agreement = (masks == reference).mean()
            ok = ok and agreement >= 0.9999
            failed |= not ok
            print(f"{mode} release of {', '.join(ENCODERS)}: {detail}CSV masks agree on {agreement * 100:.4f}% "
                  f"of {masks.size} pixels ({reference.mean() * 100:.1f}% foreground) {'OK' if ok else 'FAIL'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
