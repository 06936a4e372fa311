"""End-to-end speed of the default 4-second clip (prompt -> MP4 on disk) and peak memory.

Each configuration runs in a fresh subprocess so that peak RSS belongs to it alone.

    python benchmarks/generate_speed.py [--runs 3] [--threads 2] [--configs default,no-autoguidance,no-verifier,no-layout,12]
                                        [--models builtin,path/to/model_dir]

A configuration is "default" (the shipped settings), "no-autoguidance" (the same without the guide
model's passes), "no-verifier" (without verifier guidance), "no-layout" (without layout guidance) or
a number of sampling steps. Each configuration runs for each of `--models` ("builtin": the shipped model),
one after the other in the same run, so two models' times are measured side by side.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
config = sys.argv[2]
steps = int(config) if config.isdigit() else None
runs, out, model = int(sys.argv[3]), sys.argv[4], sys.argv[5]
t0 = time.perf_counter()
from reelforge.pipeline import Pipeline
from reelforge.media.provenance import load_identity, write_marked
import os, tempfile
os.environ["REELFORGE_HOME"] = tempfile.mkdtemp()
identity = load_identity()
pipe = Pipeline.from_pretrained(None if model == "builtin" else model)
from dataclasses import replace
if config == "no-autoguidance":
    pipe.config = replace(pipe.config, autoguidance=1.0)
if config == "no-verifier":
    pipe.config = replace(pipe.config, verifier_guidance=0.0)
if config == "no-layout":
    pipe.config = replace(pipe.config, layout_guidance=0.0)
load_s = time.perf_counter() - t0
prompts = ["a red ball rolls left across a blue floor", "a small yellow star spins on a purple background",
           "a green box bounces at sunset"]
times = []
for i in range(runs + 1):  # the first run warms up allocators and kernels
    t0 = time.perf_counter()
    video = pipe(prompts[i % len(prompts)], seconds=4, seed=i, steps=steps)
    write_marked(video.frames, out, video.fps, "mp4", video.settings, video.metadata, f"speed_{i}", identity)
    times.append(time.perf_counter() - t0)
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load_s": load_s, "warmup_s": times[0], "times_s": times[1:], "peak_rss_mb": peak_mb,
                  "steps": steps or pipe.config.steps, "frames": int(video.frames.shape[0])}))
"""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--configs", default="default,no-autoguidance,no-verifier,no-layout,12")
    p.add_argument("--models", default="builtin", help='model directories, comma-separated ("builtin": the shipped one)')
    args = p.parse_args()
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for config in args.configs.split(","):
                if config not in ("default", "no-autoguidance", "no-verifier", "no-layout") and not config.isdigit():
                    p.error(f"unknown configuration {config!r}; use default, no-autoguidance, no-verifier, no-layout "
                            "or a number of steps")
                out = subprocess.run([sys.executable, "-c", CHILD, str(args.threads), config, str(args.runs),
                                      str(Path(tmp) / "clip.mp4"), model], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                name = config if model == "builtin" else f"{model}:{config}"
                results[name] = r
                mean = sum(r["times_s"]) / len(r["times_s"])
                rows.append([name, r["steps"], f"{mean:.2f} s", f"{min(r['times_s']):.2f} s",
                             f"{r['peak_rss_mb']:.0f} MB", f"{r['load_s']:.1f} s"])
    path = write_results("generate_speed", {"threads": args.threads, "clip": "4 s, 64x64, 8 fps, MP4", "runs": results})
    print_table(f"Default 4-second clip, prompt -> MP4, {args.threads} threads",
                ["config", "steps", "mean", "best", "peak RSS", "model load"], rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
