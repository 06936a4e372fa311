"""Assemble a model directory (the layout Pipeline.from_pretrained reads) from training runs.

Weights are stored in fp16 to keep the shipped model small; they load into fp32 modules."""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import load_file, save_file


def half_copy(src: Path, dst: Path) -> None:
    """Weights as fp16 safetensors (written atomically) and their JSON config beside them."""
    state = {k: v.half().contiguous() if v.is_floating_point() else v for k, v in load_file(str(src)).items()}
    tmp = dst.with_name(f".{dst.name}.tmp")
    save_file(state, str(tmp))
    tmp.replace(dst)
    if src.with_suffix(".json").resolve() != dst.with_suffix(".json").resolve():  # re-exporting in place
        shutil.copyfile(src.with_suffix(".json"), dst.with_suffix(".json"))


def export_model(transformer: str | Path, autoencoder: str | Path, out_dir: str | Path, pipeline_config,
                 extras: dict[str, str | Path] | None = None) -> Path:
    """`extras` names optional networks by file stem, e.g. {"upscaler": path}; stems not given are
    removed from out_dir, so the directory describes exactly what was exported. An extra "guide"
    is the autoguidance checkpoint, an extra "verifier" the one that steers sampling;
    `pipeline_config.guide` / `.verifier` are then set to their files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extras = extras or {}
    if (pipeline_config.autoguidance != 1) != ("guide" in extras):
        raise ValueError("autoguidance and a guide checkpoint go together: give both or neither")
    if pipeline_config.verifier_guidance and "verifier" not in extras:
        raise ValueError("verifier guidance needs a verifier checkpoint")
    half_copy(Path(transformer), out / "transformer.safetensors")
    half_copy(Path(autoencoder), out / "autoencoder.safetensors")
    for stem in ("upscaler", "interpolator", "guide", "verifier"):
        if stem in extras:
            half_copy(Path(extras[stem]), out / f"{stem}.safetensors")
        else:
            for suffix in (".safetensors", ".json"):
                (out / f"{stem}{suffix}").unlink(missing_ok=True)
    config = {**asdict(pipeline_config), "guide": "guide.safetensors" if "guide" in extras else "",
              "verifier": "verifier.safetensors" if "verifier" in extras else ""}
    (out / "pipeline.json").write_text(json.dumps(config, indent=2))
    return out


def export_student(transformer: str | Path, model_dir: str | Path, name: str, steps: int, sampler: str,
                   shift: float, layout_guidance: float | None = None) -> Path:
    """Put a distilled student beside its teacher (`<model_dir>/turbo`): its own transformer and
    pipeline.json, sharing the teacher's autoencoder and delivery networks. Guidance is 1 and there
    is no autoguidance or verifier guidance: the student learnt the guided result and runs one pass
    per step."""
    from ..pipeline import TURBO_SUBDIR, read_config
    teacher = read_config(Path(model_dir))
    out = Path(model_dir) / TURBO_SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    half_copy(Path(transformer), out / "transformer.safetensors")
    config = {**asdict(teacher), "name": name, "steps": steps, "guidance": 1.0, "guidance_outside": 1.0,
              "sampler": sampler, "shift": shift, "parts_from": "..",
              "guide": "", "autoguidance": 1.0, "autoguidance_interval": (0.0, 1.0),
              # Steering a 4-step student's two mid-noise steps cost it 24 points of colour (MODEL_CARD.md).
              "verifier": "", "verifier_guidance": 0.0,
              # Re-making frames takes 0.14 s a clip, about as long as the student's 3 steps; --smooth-seams adds it.
              "smooth_seams": False,
              **({} if layout_guidance is None else {"layout_guidance": layout_guidance})}
    (out / "pipeline.json").write_text(json.dumps(config, indent=2))
    return out
