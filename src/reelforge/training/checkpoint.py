"""Resumable checkpoints: weights as safetensors, optimizer and step beside them, written atomically."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_weights(module: torch.nn.Module, path: Path, config_json: str | None = None) -> None:
    """Weights as safetensors (contiguous fp32 copies) and, if given, the model config beside them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    atomic_write(path, lambda p: save_file(state, str(p)))
    if config_json is not None:
        atomic_write(path.with_suffix(".json"), lambda p: p.write_text(config_json))


def load_weights(module: torch.nn.Module, path: Path) -> None:
    module.load_state_dict(load_file(str(path)))


def save_training_state(run_dir: Path, step: int, model: torch.nn.Module, optimizer, extra: dict,
                        config_json: str, ema: torch.nn.Module | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model, run_dir / "model.safetensors", config_json)
    if ema is not None:
        save_weights(ema, run_dir / "ema.safetensors", config_json)
    atomic_write(run_dir / "optimizer.pt", lambda p: torch.save(optimizer.state_dict(), p))
    atomic_write(run_dir / "state.json", lambda p: p.write_text(json.dumps({"step": step, **extra}, indent=2)))


def load_training_state(run_dir: Path, model, optimizer, ema=None) -> dict | None:
    """Restore a run in place; None when there is nothing to resume."""
    state_path = run_dir / "state.json"
    if not state_path.exists():
        return None
    load_weights(model, run_dir / "model.safetensors")
    if ema is not None and (run_dir / "ema.safetensors").exists():
        load_weights(ema, run_dir / "ema.safetensors")
    optimizer.load_state_dict(torch.load(run_dir / "optimizer.pt", weights_only=True))
    return json.loads(state_path.read_text())


def resume(run_dir: Path, model, optimizer, log, ema=None) -> int:
    """The step a run continues from (0 when fresh), with model, optimizer and EMA restored in place."""
    state = load_training_state(run_dir, model, optimizer, ema)
    if state:
        log(f"resumed from step {state['step']}")
    return state["step"] if state else 0


def save_companion(run_dir: Path, name: str, module: torch.nn.Module, optimizer) -> None:
    """A network trained beside the model (a discriminator, a fake score model) and its optimiser, as
    NAME.safetensors and NAME_optimizer.pt. Written after the model's checkpoint: a crash between the
    two leaves it one checkpoint behind."""
    save_weights(module, run_dir / f"{name}.safetensors", module.cfg.to_json())
    atomic_write(run_dir / f"{name}_optimizer.pt", lambda p: torch.save(optimizer.state_dict(), p))


def resume_companion(run_dir: Path, name: str, module: torch.nn.Module, optimizer) -> bool:
    """Load what save_companion wrote, if it is there."""
    weights, state = run_dir / f"{name}.safetensors", run_dir / f"{name}_optimizer.pt"
    if not (weights.exists() and state.exists()):
        return False
    load_weights(module, weights)
    optimizer.load_state_dict(torch.load(state, weights_only=True))
    return True
