"""``model export`` and ``model quantize``: make a model folder the runtime loads."""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.config import Settings
from photosorter.errors import ConfigError, ImageError
from photosorter.ml.quantize import DEFAULT_OPS, quantize_onnx

AGREEMENT_PHOTOS = 8


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    model = commands.add_parser("model", help="export and quantize models")
    actions = model.add_subparsers(dest="model_command", required=True)
    export = actions.add_parser("export", parents=[common],
                                help="export a Hugging Face CLIP or image model to an int8 ONNX model folder "
                                     "(needs photosorter[export])")
    export.add_argument("source", help="hub id (e.g. openai/clip-vit-base-patch32) or local model folder")
    export.add_argument("out", type=Path, help="model folder to write (must be new or empty)")
    export.add_argument("--images", type=Path,
                        help=f"folder of photos to compare float and int8 embeddings on (first {AGREEMENT_PHOTOS})")
    export.add_argument("--name", help="model name in the manifest (default: the source's last part)")
    export.add_argument("--no-quantize", dest="quantize", action="store_false", help="keep float32 weights")
    export.add_argument("--keep-float", action="store_true", help="also keep the float32 graphs in the folder")
    export.set_defaults(handler=run_export)
    quantize = actions.add_parser("quantize", parents=[common], help="int8-quantize an exported ONNX file")
    quantize.add_argument("source", type=Path, help="float ONNX file")
    quantize.add_argument("target", type=Path, nargs="?", help="output file (default: <source>_quantized.onnx)")
    quantize.add_argument("--ops", default=",".join(DEFAULT_OPS),
                          help="operator types to quantize (default: %(default)s; see photosorter/ml/quantize.py)")
    quantize.add_argument("--per-tensor", action="store_true", help="one scale per weight tensor, not per channel")
    quantize.set_defaults(handler=run_quantize)


def _sample_images(folder: Path | None, settings: Settings) -> list[Image.Image]:
    if folder is None:
        return []
    if not folder.is_dir():
        raise ConfigError([f"images: {folder} is not a folder"])
    files = LocalFiles()
    images = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        try:
            images.append(decode_image(files.read(path), 256))
        except (ImageError, OSError):
            continue
        if len(images) >= AGREEMENT_PHOTOS:
            break
    return images


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.ml.export import export_model  # keeps the CLI's start-up free of the export code

    prompts = [p for category in settings.classify.categories for p in category.prompts]
    result = export_model(args.source, args.out, images=_sample_images(args.images, settings), prompts=prompts,
                          quantize=args.quantize, keep_float=args.keep_float, name=args.name)
    print(f"exported {args.source} ({result.kind}) to {result.folder}")
    for item, size in sorted(result.sizes.items()):
        print(f"  {item:<34}{size / 1e6:>9.2f} MB")
    for graph, size in sorted(result.float_sizes.items()):
        print(f"  float32 {graph:<26}{size / 1e6:>9.2f} MB")
    for agreement in result.agreement:
        print(f"float vs int8 {agreement.what}: mean cosine {agreement.mean:.4f}, "
              f"min {agreement.minimum:.4f} over {agreement.count}")
    if args.quantize and not result.agreement:
        print("float vs int8: no images given (--images DIR) and no text tower to compare")
    return 0


def run_quantize(args: argparse.Namespace, settings: Settings) -> int:
    target = args.target or args.source.with_name(args.source.stem + "_quantized.onnx")
    ops = tuple(op.strip() for op in args.ops.split(",") if op.strip())
    result = quantize_onnx(args.source, target, ops=ops, per_channel=not args.per_tensor)
    print(f"quantized {result.source} -> {result.target}: {result.bytes_before / 1e6:.2f} MB -> "
          f"{result.bytes_after / 1e6:.2f} MB (int8 {', '.join(result.ops)})")
    print("update the model folder's photosorter-model.json (file name, sha256, size) to use it")
    return 0
