"""The `reelforge` command: one click group; every command builds the same objects the library uses.

A user's mistake is one line on stderr, `error: ...`, and exit status 2, never a traceback.
"""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import click

EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


class Group(click.Group):
    """Turns click's own usage errors into the same one-line form as ours."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as e:
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.UsageError as e:
            fail(e.format_message().splitlines()[0])
        except click.exceptions.Abort:
            sys.exit(1)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)


@click.group(cls=Group)
@click.version_option(package_name="reelforge")
def main():
    """ReelForge: open, self-hosted text-to-video."""


def _load_pipeline(model: str | None, turbo: bool = False, smooth_seams: bool | None = None):
    """The model directory's pipeline; `smooth_seams` True or False overrides its `pipeline.json`."""
    from dataclasses import replace

    from .pipeline import CheckpointError, Pipeline
    try:
        pipe = Pipeline.from_pretrained(model, turbo=turbo)
        if smooth_seams is not None:
            pipe.config = replace(pipe.config, smooth_seams=smooth_seams)
            pipe.check_smoothing()
    except CheckpointError as e:
        fail(str(e))
    return pipe


SMOOTH_SEAMS_HELP = ("Re-make the frames between latent frames with the learned interpolator: no jump every "
                     "half second, a few points less shape as the analyzer reads it (MODEL_CARD 'Seams every "
                     "half second') [default: the model's; on for the built-in model, off for its turbo student].")


@main.command()
@click.argument("prompt", required=False)
@click.option("-o", "--output", required=True, help="Output file (.mp4, .webm, .gif or .png).")
@click.option("--seconds", type=float, default=4.0, show_default=True,
              help="Clip length; past the model's window (8 s) the clip is made window by window, up to 120 s.")
@click.option("--storyboard", default=None,
              help="Timed prompts instead of PROMPT, e.g. '0s: a red ball rolls right; 5s: the red ball bounces'.")
@click.option("--fps", type=float, default=None, help="Frames per second [default: the model's, 8].")
@click.option("--size", default=None, help="WIDTHxHEIGHT, e.g. 64x64 or 1920x1080 [default: the model's base size].")
@click.option("--seed", type=int, default=None, help="Random seed; the same seed gives the same video.")
@click.option("--steps", type=int, default=None, help="Sampling steps [default: the model's].")
@click.option("--guidance", type=float, default=None, help="Classifier-free guidance scale.")
@click.option("--negative", default=None, help="Negative prompt: what the video should not show.")
@click.option("--sampler", default=None, help="euler, heun, unipc or stagger (per-frame, for diffusion-forcing models) [default: the model's].")
@click.option("--format", "fmt", default=None, help="mp4, webm, gif or png [default: from the file name].")
@click.option("--model", default=None, help="A model directory [default: the built-in model].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--visible-mark", is_flag=True, help="Also label the frames 'AI · ReelForge' in a corner.")
@click.option("--cache-threshold", type=float, default=0.0, show_default=True,
              help="First Block Cache: skip deeper blocks on steps whose first block changed less than this (0 = off).")
@click.option("--turbo", is_flag=True, help="The model's distilled few-step student (reelforge-turbo): "
              "a few steps (4 for the built-in model), no guidance pass, no negative prompt.")
@click.option("--no-rewrite", is_flag=True, help="Give the model the prompt as written, without mapping words it "
              "never learnt (e.g. 'scarlet', 'orb') onto ones it did.")
@click.option("--layout-guidance", type=float, default=None,
              help="Steer the object along the path its motion plans, by this cross-attention bias (0 = off) "
              "[default: the model's, 2 for the built-in model].")
@click.option("--smooth-seams/--no-smooth-seams", default=None, help=SMOOTH_SEAMS_HELP)
def generate(prompt, output, seconds, storyboard, fps, size, seed, steps, guidance, negative, sampler, fmt, model,
             quiet, visible_mark, cache_threshold, turbo, no_rewrite, layout_guidance, smooth_seams):
    """Generate a video from PROMPT (or from a --storyboard)."""
    from tqdm import tqdm

    from .long import Shot, WINDOW_SECONDS, generate_long, parse_storyboard, window_plan
    from .media.encode import OutputError, check_output_path
    from .media.provenance import ProvenanceError, load_identity, write_marked
    from .pipeline import InputError, parse_size
    try:
        if (prompt is None) == (storyboard is None):
            raise InputError("give a PROMPT or a --storyboard (one of the two)")
        shots = parse_storyboard(storyboard) if storyboard else [Shot(0.0, prompt)]
        path, fmt = check_output_path(output, fmt)
        size_wh = parse_size(size)
        identity = load_identity()
    except (OutputError, InputError, ProvenanceError) as e:
        fail(str(e))
    pipe = _load_pipeline(model, turbo, smooth_seams)
    steps_total = steps or pipe.config.steps
    long = storyboard is not None or seconds > pipe.config.max_seconds
    try:
        if not long:
            pipe.check_inputs(prompt, seconds, pipe.config.fps if fps is None else fps, size_wh,
                              pipe.config.guidance if guidance is None else guidance, steps_total,
                              sampler or pipe.config.sampler)
        windows = len(window_plan(seconds, WINDOW_SECONDS, 1.0)) if long and seconds > 0 else 1
        with tqdm(total=steps_total * windows, desc="denoising", unit="step", disable=quiet, file=sys.stderr) as bar:
            on_step = lambda i, t, latents: bar.update(1) and None  # noqa: E731
            if long:
                video = generate_long(pipe, shots, seconds, fps=fps, size=size_wh, seed=seed, steps=steps,
                                      guidance=guidance, sampler=sampler, negative_prompt=negative,
                                      cache_threshold=cache_threshold, on_step=on_step, rewrite_prompt=not no_rewrite,
                                      layout_guidance=layout_guidance)
            else:
                video = pipe(prompt, negative_prompt=negative, seconds=seconds, fps=fps, size=size_wh, seed=seed,
                             steps=steps, guidance=guidance, sampler=sampler, on_step=on_step,
                             cache_threshold=cache_threshold, rewrite_prompt=not no_rewrite,
                             layout_guidance=layout_guidance)
        # Delivered, marked and encoded a chunk at a time: a long 1080p clip is never held whole.
        write_marked(video.chunks(), path, video.fps, fmt, video.settings, video.metadata,
                     video_id=f"cli_{uuid.uuid4().hex[:16]}", identity=identity, visible=visible_mark, in_place=True)
    except (InputError, OutputError) as e:
        fail(str(e))
    click.echo(f"wrote {path} ({video.count} frames, {video.size[0]}x{video.size[1]}, "
               f"{video.fps:g} fps, seed {video.seed})")
    if "revised_prompt" in video.settings:
        click.echo(f"prompt as the model read it: {video.settings['revised_prompt']!r} (--no-rewrite to turn off)")


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(), help="A JSON file from configs/.")
@click.option("--log", "log_path", default=None, help="Also append log lines to this file.")
def train(config_path, log_path):
    """Train one stage (autoencoder, bank, transformer, upscaler, interpolator, pairs, student, verifier) from a config; resumes where it stopped."""
    import torch

    from .training.config import ConfigError, load_config
    if not Path(config_path).exists():
        fail(f"config file {config_path!r} does not exist")
    try:
        cfg = load_config(config_path)
    except (ConfigError, json.JSONDecodeError, TypeError) as e:
        fail(str(e))
    torch.set_num_threads(torch.get_num_threads())
    log_file = open(log_path, "a") if log_path else None

    def log(line: str) -> None:
        click.echo(line)
        if log_file:
            log_file.write(line + "\n")
            log_file.flush()

    if cfg.stage == "autoencoder":
        from .training.autoencoder import train_autoencoder
        out = train_autoencoder(cfg, log)
    elif cfg.stage == "bank":
        from .training.bank import build_bank
        out = build_bank(cfg, log)
    elif cfg.stage in ("upscaler", "interpolator"):
        from .training.enhance import train_enhancer
        out = train_enhancer(cfg, log)
    elif cfg.stage == "pairs":
        from .training.distill import make_pairs
        out = make_pairs(cfg, log)
    elif cfg.stage == "student":
        from .training.distill import train_student
        out = train_student(cfg, log)
    elif cfg.stage == "verifier":
        from .training.verifier import train_verifier
        out = train_verifier(cfg, log)
    else:
        from .training.loop import train_transformer
        out = train_transformer(cfg, log)
    log(f"done: {out}")


@main.command()
@click.option("--transformer", default="runs/transformer/ema.safetensors", show_default=True)
@click.option("--autoencoder", default="runs/autoencoder_decoder/model.safetensors", show_default=True,
              help="The autoencoder (configs/autoencoder.json, then its decoder fine-tuned by "
                   "configs/autoencoder_decoder.json).")
@click.option("--upscaler", default="runs/upscaler_v3/upscaler.safetensors", show_default=True,
              help="Learned 4x upscaler; 'none' to deliver by resizing.")
@click.option("--interpolator", default="runs/interpolator/interpolator.safetensors", show_default=True,
              help="Learned frame interpolator; 'none' to re-time by repeating frames.")
@click.option("--out", "out_dir", default="src/reelforge/weights/builtin", show_default=True)
@click.option("--name", default="reelforge-base", show_default=True)
@click.option("--steps", type=int, default=None, help="Default sampling steps to record.")
@click.option("--guidance", type=float, default=None, help="Default guidance to record.")
@click.option("--sampler", default=None, help="Default sampler to record.")
@click.option("--clean-context", is_flag=True, help="The transformer was trained with per-frame noise levels "
              "(diffusion forcing): give it known frames clean.")
@click.option("--guidance-interval", type=(float, float), default=None,
              help="Noise levels LO HI where guidance applies.")
@click.option("--guidance-outside", type=float, default=None,
              help="Guidance outside that interval (1: the conditional branch alone).")
@click.option("--guide", default="none", show_default=True,
              help="An earlier checkpoint of the transformer to autoguide by ('none': no autoguidance).")
@click.option("--autoguidance", type=float, default=None, help="Autoguidance weight (needs --guide).")
@click.option("--autoguidance-interval", type=(float, float), default=None,
              help="Noise levels LO HI where autoguidance applies.")
@click.option("--verifier", default="none", show_default=True,
              help="A latent verifier (configs/verifier.json) to steer sampling by ('none': no verifier).")
@click.option("--verifier-guidance", type=float, default=None,
              help="Steer sampling towards what the verifier reads as the prompt's factors (needs --verifier).")
@click.option("--verifier-guidance-interval", type=(float, float), default=None,
              help="Noise levels LO HI where verifier guidance applies.")
@click.option("--layout-guidance", type=float, default=None,
              help="Cross-attention bias along the object's planned path (flow/layout.py; 0: off).")
@click.option("--layout-interval", type=(float, float), default=None,
              help="Noise levels LO HI where layout guidance applies.")
@click.option("--noise-correlation", type=float, default=None,
              help="Share of the starting noise common to all latent frames, as the transformer was trained (0: none).")
@click.option("--smooth-seams", is_flag=True, help="Record smooth_seams: the frames between latent frames re-made "
              "by the learned interpolator (needs --interpolator).")
def export(transformer, autoencoder, upscaler, interpolator, out_dir, name, steps, guidance, sampler, clean_context,
           guidance_interval, guidance_outside, guide, autoguidance, autoguidance_interval, verifier,
           verifier_guidance, verifier_guidance_interval, layout_guidance, layout_interval, noise_correlation,
           smooth_seams):
    """Assemble a model directory from training runs (fp16 safetensors + configs)."""
    from dataclasses import replace

    from .pipeline import PipelineConfig
    from .training.export import export_model
    if (guide != "none") != (autoguidance not in (None, 1.0)):
        fail("--guide and --autoguidance W (W > 1) go together: give both or neither")
    if autoguidance_interval is not None and guide == "none":
        fail("--autoguidance-interval needs --guide and --autoguidance")
    if (verifier != "none") != bool(verifier_guidance):
        fail("--verifier and --verifier-guidance W (W > 0) go together: give both or neither")
    if verifier_guidance_interval is not None and verifier == "none":
        fail("--verifier-guidance-interval needs --verifier and --verifier-guidance")
    if smooth_seams and interpolator == "none":
        fail("--smooth-seams needs the learned frame interpolator (--interpolator)")
    extras = {k: v for k, v in {"upscaler": upscaler, "interpolator": interpolator, "guide": guide,
                                "verifier": verifier}.items() if v != "none"}
    for path in (transformer, autoencoder, *extras.values()):
        if not Path(path).exists() or not Path(path).with_suffix(".json").exists():
            fail(f"checkpoint {path!r} (with its .json config) does not exist")
    cfg = PipelineConfig(name=name)
    overrides = {k: v for k, v in {"steps": steps, "guidance": guidance, "sampler": sampler,
                                   "guidance_interval": guidance_interval,
                                   "guidance_outside": guidance_outside, "autoguidance": autoguidance,
                                   "autoguidance_interval": autoguidance_interval,
                                   "verifier_guidance": verifier_guidance,
                                   "verifier_guidance_interval": verifier_guidance_interval,
                                   "layout_guidance": layout_guidance,
                                   "layout_interval": layout_interval,
                                   "noise_correlation": noise_correlation}.items() if v is not None}
    if clean_context:
        overrides["clean_context"] = True
    if smooth_seams:
        overrides["smooth_seams"] = True
    if guide != "none":
        overrides["guide"] = "guide.safetensors"
    if verifier != "none":
        overrides["verifier"] = "verifier.safetensors"
    try:
        cfg = replace(cfg, **overrides)
        out = export_model(transformer, autoencoder, out_dir, cfg, extras)
    except ValueError as e:  # PipelineConfig's own checks, e.g. the guidance interval
        fail(str(e))
    click.echo(f"wrote {out}")


@main.command(name="export-turbo")
@click.option("--transformer", default="runs/turbo/ema.safetensors", show_default=True)
@click.option("--model", "model_dir", default="src/reelforge/weights/builtin", show_default=True,
              help="The teacher's model directory; the student goes into its turbo/ folder.")
@click.option("--name", default="reelforge-turbo", show_default=True)
@click.option("--steps", type=int, default=3, show_default=True)
@click.option("--sampler", default="euler", show_default=True)
@click.option("--shift", type=float, default=1.0, show_default=True)
@click.option("--layout-guidance", type=float, default=None,
              help="The student's layout guidance [default: the teacher's].")
def export_turbo(transformer, model_dir, name, steps, sampler, shift, layout_guidance):
    """Ship a distilled student beside its teacher (stage "student" of configs/turbo_*.json)."""
    from .pipeline import CheckpointError
    from .training.export import export_student
    if not Path(transformer).exists() or not Path(transformer).with_suffix(".json").exists():
        fail(f"checkpoint {transformer!r} (with its .json config) does not exist")
    try:
        out = export_student(transformer, model_dir, name, steps, sampler, shift, layout_guidance)
    except CheckpointError as e:
        fail(str(e))
    click.echo(f"wrote {out}")


@main.command(name="eval")
@click.option("--model", default=None, help="A model directory [default: the built-in model].")
@click.option("--per-set", type=int, default=24, show_default=True, help="Clips per evaluation set.")
@click.option("--steps", type=int, default=None)
@click.option("--guidance", type=float, default=None)
@click.option("--sampler", default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_path", default="eval.json", show_default=True, help="Where to write the results.")
@click.option("--turbo", is_flag=True, help="Evaluate the model's distilled student.")
@click.option("--no-rewrite", is_flag=True, help="Give the model the prompts as written (prompting.py off).")
@click.option("--sets", default=None, help="Which prompt sets to run, comma-separated: seen, held_out, "
              "paraphrase [default: all].")
@click.option("--layout-guidance", type=float, default=None, help="Override the model's layout guidance (0 = off).")
@click.option("--smooth-seams/--no-smooth-seams", default=None, help=SMOOTH_SEAMS_HELP)
def evaluate(model, per_set, steps, guidance, sampler, seed, json_path, turbo, no_rewrite, sets, layout_guidance,
             smooth_seams):
    """Judge prompt adherence (seen, held-out, paraphrases) and temporal consistency with the analyzer."""
    from rich.console import Console

    from .evaluation.run import SETS, results_table
    from .evaluation.run import evaluate as run_eval
    if per_set < 1:
        fail(f"--per-set must be >= 1, got {per_set}")
    chosen = SETS if sets is None else tuple(s.strip() for s in sets.split(",") if s.strip())
    if not chosen or any(s not in SETS for s in chosen):
        fail(f"unknown prompt set in {sets!r}; allowed: {', '.join(SETS)}")
    pipe = _load_pipeline(model, turbo, smooth_seams)
    results = run_eval(pipe, per_set=per_set, steps=steps, guidance=guidance, sampler=sampler, seed=seed,
                       sets=chosen, rewrite_prompt=not no_rewrite, layout_guidance=layout_guidance)
    tmp = Path(json_path).with_name(f".{Path(json_path).name}.tmp")  # never a half-written file
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(json_path)
    Console().print(results_table(results))
    click.echo(f"wrote {json_path}")


@main.command()
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def verify(file, as_json):
    """Check FILE's provenance: signed C2PA manifest and invisible watermark.

    Exit status 0: the file carries a valid manifest or the watermark; 1: neither; 2: bad input."""
    from .media.provenance import ProvenanceError, load_identity, local_video_ids, verify as check
    try:
        identity = load_identity()
        report = check(file, trust_pem=identity.trust_pem, deployment_id=identity.deployment_id,
                       video_ids=local_video_ids())
    except ProvenanceError as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        if not report.manifest_present:
            click.echo("manifest:  none")
        elif report.manifest_valid:
            trust = "trusted signer (this deployment)" if report.manifest_state == "Trusted" else "signer not in this deployment's trust list"
            click.echo(f"manifest:  valid, {trust}; made by {report.generator}, deployment {report.deployment_id}, "
                       f"video {report.video_id}")
        else:
            click.echo(f"manifest:  INVALID ({'; '.join(report.manifest_problems) or report.manifest_state})")
        if report.watermark_found:
            if report.watermark_video_id:
                payload = f"names this deployment's video {report.watermark_video_id} (match {report.watermark_match_z:.1f} sigma)"
            elif report.watermark_payload_ok:
                payload = f"deployment tag {report.watermark_deployment_tag}, video tag {report.watermark_video_tag}"
            else:
                payload = "payload too damaged to read"
            click.echo(f"watermark: found (strength {report.watermark_pilot_z:.1f} sigma); {payload}")
        else:
            click.echo(f"watermark: not found (strength {report.watermark_pilot_z:.1f} sigma)")
        click.echo("verdict:   generated by ReelForge" if report.verified else "verdict:   no ReelForge provenance found")
    sys.exit(0 if report.verified else 1)


from .service.cli import keys, serve  # noqa: E402
from .service.governance_cli import audit, policy, reports, users  # noqa: E402

main.add_command(serve)
main.add_command(keys)
main.add_command(users)
main.add_command(audit)
main.add_command(reports)
main.add_command(policy)

if __name__ == "__main__":
    main()
