"""Save a CLIP with ViT-B/32's exact shapes (the real config: 12+12 layers, hidden 768/512, patch 32,
image 224, text length 77, projection 512) and random weights, as a Hugging Face model folder.

Compute does not depend on the weight values, so once exported and quantized like the default
(``photosorter model export``), this runs at the default model's true speed and memory. Runs in the
export virtualenv (torch, transformers):

    .venv-export/bin/python bench/clip_shaped_source.py OUT_DIR ../shared/models/clip-tokenizer
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main(out: Path, tokenizer: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig.from_pretrained(tokenizer)  # openai/clip-vit-base-patch32's own config.json
    CLIPModel(config).save_pretrained(out)
    for item in tokenizer.iterdir():
        if item.name != "config.json":
            shutil.copyfile(item, out / item.name)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
