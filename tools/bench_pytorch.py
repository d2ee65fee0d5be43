#!/usr/bin/env python3
"""Times SMP UnetPlusPlus forward in PyTorch eager (and optionally ONNX Runtime)
the way `bonectl bench` times ours: one warm-up, then N runs, min and median.

    tools/.venv/bin/python tools/bench_pytorch.py --encoder resnet34 --size 512 --threads 2 --runs 3 [--onnx]
"""
import argparse
import json
import resource
import statistics
import time

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--encoder", default="resnet34")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--classes", type=int, default=29)
    p.add_argument("--onnx", action="store_true", help="time ONNX Runtime instead of PyTorch eager")
    a = p.parse_args()
    import segmentation_models_pytorch as smp

    torch.set_num_threads(a.threads)
    model = smp.UnetPlusPlus(a.encoder, encoder_weights=None, classes=a.classes).eval()
    x = torch.rand(1, 3, a.size, a.size)
    if a.onnx:
        import io
        import onnxruntime as ort

        buffer = io.BytesIO()
        torch.onnx.export(model, x, buffer, input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = a.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        run = lambda: session.run(None, feed)
        engine = "onnxruntime"
    else:
        def run():
            with torch.no_grad():
                model(x)
        engine = "pytorch-eager"
    run()
    times = []
    for _ in range(a.runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"engine": engine, "torch": torch.__version__, "encoder": a.encoder, "size": a.size,
                      "threads": a.threads, "runs": a.runs, "min_seconds": min(times),
                      "median_seconds": statistics.median(times), "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
