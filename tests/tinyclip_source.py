"""Save a tiny CLIP (random weights, small sizes) with the real CLIP tokenizer and preprocessing, as a
Hugging Face model folder. Runs in the export virtualenv (it needs torch and transformers):

    .venv-export/bin/python tests/tinyclip_source.py OUT_DIR TOKENIZER_DIR
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main(out: Path, tokenizer: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2,
                     "num_hidden_layers": 2, "max_position_embeddings": 77, "bos_token_id": 49406,
                     "eos_token_id": 49407, "pad_token_id": 49407},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2,
                       "image_size": 224, "patch_size": 32},
        projection_dim=16)
    CLIPModel(config).save_pretrained(out)
    for item in tokenizer.iterdir():
        if item.name != "config.json":  # the real config describes ViT-B/32's sizes, not this tiny one
            shutil.copyfile(item, out / item.name)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
