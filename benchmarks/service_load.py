"""Load on `reelforge serve`: N concurrent clients each create videos and poll them to completion.

Reports jobs per minute and the latency of GET /v1/videos/{id} while generations run (the target
is p99 < 50 ms: status calls must not wait for the workers). The server runs in a subprocess on a
loopback port with a temporary REELFORGE_HOME, as `reelforge serve` runs it.

    python benchmarks/service_load.py [--clients 4] [--jobs 3] [--model DIR | --tiny] [--seconds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

POLL_SECONDS = 0.1


def tiny_model(path: Path) -> Path:
    """Random tiny weights (the test suite's layout): measures the server, not the model."""
    import torch

    from reelforge.models.autoencoder import AutoencoderConfig, VideoAutoencoder
    from reelforge.models.transformer import TransformerConfig, VideoTransformer
    from reelforge.training.checkpoint import save_weights
    torch.manual_seed(0)
    ae_cfg = AutoencoderConfig(latent_channels=4, enc_channels=(16, 16), dec_channels=(16, 16))
    dit_cfg = TransformerConfig(in_channels=4, dim=64, depth=2, heads=2, rope_split=(8, 12, 12))
    save_weights(VideoAutoencoder(ae_cfg), path / "autoencoder.safetensors", ae_cfg.to_json())
    save_weights(VideoTransformer(dit_cfg), path / "transformer.safetensors", dit_cfg.to_json())
    (path / "pipeline.json").write_text(json.dumps({"name": "tiny", "steps": 24, "guidance": 2.0}))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, model_dir: Path, port: int, workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "REELFORGE_HOME": str(home), "REELFORGE_MODEL_DIR": str(model_dir),
           "REELFORGE_WORKERS": str(workers), "REELFORGE_TORCH_THREADS": str(threads),
           "REELFORGE_CREATE_PER_MINUTE": "100000", "REELFORGE_MAX_ACTIVE_JOBS": "100000"}
    process = subprocess.Popen([sys.executable, "-c", "from reelforge.cli import main; main()", "serve",
                                "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited during startup")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start within 120 s")


def client_loop(base: str, key: str, jobs: int, seconds: str, deadline: float, out: dict) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for i in range(jobs):
            t0 = time.perf_counter()
            created = http.post("/v1/videos", json={"prompt": f"a red ball rolls left {i}", "seconds": seconds})
            out["create_ms"].append((time.perf_counter() - t0) * 1000)
            created.raise_for_status()
            video_id = created.json()["id"]
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                video = http.get(f"/v1/videos/{video_id}").json()
                out["get_ms"].append((time.perf_counter() - t0) * 1000)
                if video["status"] in ("completed", "failed"):
                    out["done" if video["status"] == "completed" else "failed"] += 1
                    break
                time.sleep(POLL_SECONDS)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--jobs", type=int, default=3, help="videos per client")
    p.add_argument("--seconds", default="2", help="length of each video")
    p.add_argument("--model", default=None, help="a model directory [default: the built-in model]")
    p.add_argument("--tiny", action="store_true", help="random tiny weights: the server's overhead alone")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    p.add_argument("--timeout", type=float, default=300.0, help="give up polling after this many seconds")
    args = p.parse_args()

    from reelforge.service import crud
    from reelforge.service.config import Settings
    from reelforge.service.db import make_engine, make_sessionmaker
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        model_dir = tiny_model(Path(tmp)) if args.tiny else Path(args.model) if args.model else None
        if model_dir is None:
            from reelforge.pipeline import BUILTIN_DIR
            model_dir = BUILTIN_DIR
        with make_sessionmaker(make_engine(Settings(home=home).database_path))() as session:
            key = crud.create_key(session, "bench")[1]
        port = free_port()
        server = start_server(home, model_dir, port, args.workers, args.threads)
        out = {"create_ms": [], "get_ms": [], "done": 0, "failed": 0}
        try:
            t0 = time.monotonic()
            threads = [threading.Thread(target=client_loop, args=(f"http://127.0.0.1:{port}", key, args.jobs,
                                                                  args.seconds, t0 + args.timeout, out))
                       for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - t0
        finally:
            server.terminate()
            server.wait(30)

    get_ms = out["get_ms"]
    results = {"clients": args.clients, "jobs_per_client": args.jobs, "seconds": args.seconds,
               "model": "tiny random" if args.tiny else str(model_dir), "workers": args.workers,
               "torch_threads": args.threads, "wall_s": wall, "completed": out["done"], "failed": out["failed"],
               "jobs_per_minute": out["done"] / wall * 60, "get_requests": len(get_ms),
               "get_p50_ms": percentile(get_ms, 0.50), "get_p99_ms": percentile(get_ms, 0.99),
               "get_max_ms": max(get_ms, default=float("nan")),
               "create_p50_ms": statistics.median(out["create_ms"]) if out["create_ms"] else float("nan")}
    path = write_results("service_load", results)
    print_table(f"reelforge serve: {args.clients} clients x {args.jobs} videos of {args.seconds} s "
                f"({results['model']}, {args.workers} worker, {args.threads} torch threads)",
                ["jobs/min", "completed", "GET p50", "GET p99", "GET max", "POST p50", "GETs"],
                [[f"{results['jobs_per_minute']:.1f}", f"{out['done']}/{args.clients * args.jobs}",
                  f"{results['get_p50_ms']:.1f} ms", f"{results['get_p99_ms']:.1f} ms",
                  f"{results['get_max_ms']:.1f} ms", f"{results['create_p50_ms']:.1f} ms", len(get_ms)]])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
