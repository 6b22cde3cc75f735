"""Save a tiny ViT image classifier (random weights, small sizes, three ImageNet class names) with its
image processor, as a Hugging Face model folder. Runs in the export virtualenv (torch, transformers):

    .venv-export/bin/python tests/tinyvit_source.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

LABELS = ("tabby, tabby cat", "pizza, pizza pie", "web site, website, internet site, site")


def main(out: Path) -> None:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                       image_size=224, patch_size=32, num_labels=len(LABELS),
                       id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)})
    ViTForImageClassification(config).save_pretrained(out)
    ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
