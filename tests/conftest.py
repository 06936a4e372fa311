import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Commands keep state (signing identity, database) under REELFORGE_HOME: never the user's."""
    os.environ["REELFORGE_HOME"] = str(tmp_path_factory.mktemp("reelforge_home"))


@pytest.fixture(scope="session")
def text_encoder():
    from reelforge.models.text_encoder import TextEncoder
    return TextEncoder()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A model directory with the built-in layout and tiny random weights: fast, content-free."""
    import json

    from reelforge.models.autoencoder import AutoencoderConfig, VideoAutoencoder
    from reelforge.models.transformer import TransformerConfig, VideoTransformer
    from reelforge.training.checkpoint import save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_model")
    ae_cfg = AutoencoderConfig(latent_channels=4, enc_channels=(16, 16), dec_channels=(16, 16))
    dit_cfg = TransformerConfig(in_channels=4, dim=64, depth=2, heads=2, rope_split=(8, 12, 12))
    save_weights(VideoAutoencoder(ae_cfg), path / "autoencoder.safetensors", ae_cfg.to_json())
    transformer = VideoTransformer(dit_cfg)
    for p in transformer.parameters():  # undo the zero init, so that text and time reach the output
        torch.nn.init.normal_(p, std=0.05)
    save_weights(transformer, path / "transformer.safetensors", dit_cfg.to_json())
    (path / "pipeline.json").write_text(json.dumps({"name": "tiny", "steps": 2, "guidance": 2.0}))
    return path


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_model_dir, text_encoder):
    from reelforge.pipeline import Pipeline
    return Pipeline.from_pretrained(tiny_model_dir, text_encoder=text_encoder)
