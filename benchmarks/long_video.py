"""Long clips: wall time and peak memory of `reelforge generate --seconds N --size WxH --fps F`
(each run in a fresh process, so peak RSS is its own), and consistency across windows judged by
the analyzer on the model-resolution frames: object colour and shape per frame, motion direction
per window, and the seam ratio (change at window joins over the clip's median change).

    python benchmarks/long_video.py [--runs "10:1920x1080:24:default,10:1920x1080:24:turbo,..."]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

CHILD = r"""
import json, os, resource, sys, tempfile, time, torch
torch.set_num_threads(2)
seconds, size, fps, mode, prompt = float(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
model = sys.argv[6] or None
t0 = time.perf_counter()
from reelforge.long import Shot, generate_long, seam_ratio
from reelforge.media.provenance import load_identity, write_marked
from reelforge.pipeline import Pipeline, parse_size
from reelforge.world.analyzer import analyze
pipe = Pipeline.from_pretrained(model)
kwargs = {}
if mode == "turbo" and pipe.has_turbo:  # the distilled student
    pipe = pipe.turbo()
elif mode == "turbo":  # a model without one: 8 Euler steps + First Block Cache
    kwargs = {"steps": 8, "sampler": "euler", "cache_threshold": 0.1}
os.environ["REELFORGE_HOME"] = tempfile.mkdtemp()
identity = load_identity()
t1 = time.perf_counter()
video = generate_long(pipe, [Shot(0.0, prompt)], seconds, fps=fps, size=parse_size(size), seed=0, **kwargs)
t2 = time.perf_counter()
out = os.path.join(tempfile.mkdtemp(), "long.mp4")
# As the CLI does: delivered, marked and encoded a chunk at a time.
write_marked(video.chunks(), out, fps, "mp4", video.settings, {}, "bench_long", identity, in_place=True)
t3 = time.perf_counter()
native_frames, native_fps = video.delivery.source, video.delivery.source_fps  # the model's own frames
boundaries = [round(b * native_fps / fps) for b in video.settings["window_boundaries"]]
analysis = analyze(native_frames, native_fps)
main = analysis.main
colors = main.frame_colors if main else []
shapes = [s for s in (main.frame_shapes if main else []) if s is not None]
top_color = max(set(colors), key=colors.count) if colors else None
top_shape = max(set(shapes), key=shapes.count) if shapes else None
window_motions = []
edges = [0] + boundaries + [len(native_frames)]
for a, b in zip(edges, edges[1:]):
    m = analyze(native_frames[a:b], native_fps).main
    window_motions.append(m.motion if m else None)
print(json.dumps({
    "seconds": seconds, "size": size, "fps": fps, "mode": mode, "windows": video.settings["windows"],
    "generate_s": t2 - t1, "deliver_encode_s": t3 - t2, "total_s": t3 - t1, "load_s": t1 - t0,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "frames": video.count, "color": top_color, "shape": top_shape,
    "color_frames": colors.count(top_color) / len(colors) if colors else 0.0,
    "shape_frames": shapes.count(top_shape) / max(1, len(main.frame_shapes)) if main else 0.0,
    "window_motions": window_motions,
    "seam_ratio": seam_ratio(native_frames, [round(b) for b in boundaries]),
}))
"""

DEFAULT_RUNS = "10:1920x1080:24:default,10:1920x1080:24:turbo,20:1920x1080:24:turbo,40:1920x1080:24:turbo"
PROMPTS = ["a red ball rolls right on a blue background", "a yellow star spins on a black background",
           "a green square moves up on a white background"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", default=DEFAULT_RUNS, help="seconds:WxH:fps:mode, comma separated (mode default|turbo)")
    p.add_argument("--prompts", type=int, default=1, help="prompts per run (consistency over more clips)")
    p.add_argument("--model", default="", help="a model directory [default: the built-in model]")
    args = p.parse_args()
    results, rows = [], []
    for run in args.runs.split(","):
        seconds, size, fps, mode = run.split(":")
        for prompt in PROMPTS[:args.prompts]:
            out = subprocess.run([sys.executable, "-c", CHILD, seconds, size, fps, mode, prompt, args.model],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-2000:])
            r = json.loads(out.stdout.strip().splitlines()[-1]) | {"prompt": prompt}
            results.append(r)
            rows.append([f"{r['seconds']:g} s {r['size']} {r['fps']:g} fps", r["mode"], r["windows"],
                         f"{r['total_s']:.1f} s", f"{r['generate_s']:.1f} s", f"{r['deliver_encode_s']:.1f} s",
                         f"{r['peak_rss_mb']:.0f} MB", f"{100 * r['color_frames']:.0f}%", f"{100 * r['shape_frames']:.0f}%",
                         " ".join(str(m) for m in r["window_motions"]), f"{r['seam_ratio']:.2f}"])
    path = write_results("long_video", {"runs": results})
    print_table("Long clips, 2 threads (turbo = the distilled student where the model has one)",
                ["clip", "mode", "windows", "total", "generate", "deliver+mark+encode", "peak RSS",
                 "same colour", "same shape", "motion per window", "seam ratio"], rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
