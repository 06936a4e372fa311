import os

import pytest
from click.testing import CliRunner

from reelforge.cli import main
from reelforge.media.decode import read_video


@pytest.fixture
def run(tiny_model_dir):
    def invoke(*args):
        result = CliRunner().invoke(main, list(args))
        return result.exit_code, result.output
    return invoke


def test_generate_writes_a_browser_playable_mp4_with_metadata(run, tiny_model_dir, tmp_path):
    out = tmp_path / "clip.mp4"
    code, text = run("generate", "a red ball rolls left", "-o", str(out), "--model", str(tiny_model_dir),
                     "--seed", "5", "--seconds", "2", "--fps", "10", "--size", "80x48", "--quiet")
    assert code == 0, text
    frames, fps, metadata = read_video(out)
    assert frames.shape == (20, 48, 80, 3) and fps == 10
    assert metadata["title"] == "a red ball rolls left" and '"seed": 5' in metadata["comment"]


def test_generate_says_how_the_model_read_a_rewritten_prompt_and_can_leave_it(run, tiny_model_dir, tmp_path):
    out = tmp_path / "clip.mp4"
    args = ("generate", "a scarlet ball rolls left", "-o", str(out), "--model", str(tiny_model_dir), "--seconds", "1",
            "--quiet")
    code, text = run(*args)
    assert code == 0, text
    assert "prompt as the model read it: 'a red circle moves left'" in text
    assert '"revised_prompt": "a red circle moves left"' in read_video(out)[2]["comment"]
    code, text = run(*args, "--no-rewrite")
    assert code == 0 and "read it" not in text and "revised_prompt" not in read_video(out)[2]["comment"]


@pytest.mark.parametrize("fmt", ["webm", "gif", "png"])
def test_other_formats(run, tiny_model_dir, tmp_path, fmt):
    out = tmp_path / f"clip.{fmt}"
    code, text = run("generate", "a blue star", "-o", str(out), "--model", str(tiny_model_dir), "--seconds", "1", "--quiet")
    assert code == 0, text
    assert out.stat().st_size > 100


@pytest.mark.parametrize("args, message", [
    (["", "-o", "{tmp}/a.mp4"], "prompt is empty"),
    (["  ", "-o", "{tmp}/a.mp4"], "prompt is empty"),
    (["x", "-o", "{tmp}/a.mp4", "--size", "huge"], "unknown size 'huge'"),
    (["x", "-o", "{tmp}/a.mp4", "--fps", "0"], "fps must be between"),
    (["x", "-o", "{tmp}/a.avi"], "unknown output format 'avi'"),
    (["x", "-o", "{tmp}/a.mp4", "--format", "mov"], "unknown output format 'mov'"),
    (["x", "-o", "{tmp}/a.mp4", "--seconds", "0"], "seconds must be > 0"),
    (["x", "-o", "{tmp}/a.mp4", "--seconds", "-3"], "seconds must be > 0"),
    (["x", "-o", "{tmp}/a.mp4", "--seconds", "999"], "seconds must be > 0 and <= 120"),
    (["-o", "{tmp}/a.mp4"], "give a PROMPT or a --storyboard"),
    (["--storyboard", "2s: a red ball", "-o", "{tmp}/a.mp4"], "must start at 0s"),
    (["x", "-o", "/nonexistent/dir/a.mp4"], "does not exist"),
    (["x", "-o", "{tmp}/a.mp4", "--seconds", "abc"], "abc"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(run, tiny_model_dir, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, text = run("generate", *args, "--model", str(tiny_model_dir), "--quiet")
    assert code == 2
    assert text.strip().startswith("error:") and message in text and len(text.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_missing_and_corrupt_checkpoints(run, tmp_path, tiny_model_dir):
    code, text = run("generate", "x", "-o", str(tmp_path / "a.mp4"), "--model", str(tmp_path / "none"))
    assert code == 2 and "does not exist" in text
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_model_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes()[: 200 if f.suffix == ".safetensors" else None])
    code, text = run("generate", "x", "-o", str(tmp_path / "a.mp4"), "--model", str(broken))
    assert code == 2 and "corrupt" in text and not (tmp_path / "a.mp4").exists()


def test_unwritable_output(run, tiny_model_dir, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        code, text = run("generate", "x", "-o", str(locked / "a.mp4"), "--model", str(tiny_model_dir))
        assert code == 2 and "not writable" in text
    finally:
        locked.chmod(0o700)


def test_eval_reports_each_sets_seam_ratio_and_each_clips_consistency(run, tiny_model_dir, tmp_path):
    import json
    code, text = run("eval", "--model", str(tiny_model_dir), "--sets", "held_out", "--per-set", "2",
                     "--json", str(tmp_path / "e.json"))
    assert code == 0, text
    held_out = json.loads((tmp_path / "e.json").read_text())["held_out"]
    assert held_out["seam_ratio"] > 0 and "seam" in text
    assert all(0 <= clip["consistency"] <= 1 for clip in held_out["clips"]) and len(held_out["clips"]) == 2


def test_smooth_seams_without_an_interpolator_is_named_before_any_work(run, tiny_model_dir, tmp_path):
    out = tmp_path / "clip.mp4"
    code, text = run("generate", "a red ball", "-o", str(out), "--model", str(tiny_model_dir), "--smooth-seams", "--quiet")
    assert code == 2 and "smooth_seams needs the learned frame interpolator" in text and not out.exists()
    code, text = run("generate", "a red ball", "-o", str(out), "--model", str(tiny_model_dir), "--no-smooth-seams",
                     "--quiet", "--seconds", "1")
    assert code == 0, text


def test_eval_names_an_unknown_prompt_set(run, tiny_model_dir, tmp_path):
    code, text = run("eval", "--model", str(tiny_model_dir), "--sets", "held_out,bogus", "--json", str(tmp_path / "e.json"))
    assert code == 2 and "unknown prompt set" in text and "seen, held_out, paraphrase" in text
    assert not (tmp_path / "e.json").exists()
