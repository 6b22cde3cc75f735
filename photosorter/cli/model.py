"""``model export``, ``quantize``, ``reference`` and ``check``: make a model folder the runtime loads, and check it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from photosorter.cli.commands import Options, described
from photosorter.config import Settings
from photosorter.errors import ConfigError, ImageError
from photosorter.ml.quantize import DEFAULT_OPS, quantize_onnx

if TYPE_CHECKING:  # Pillow: only when photos are read, so --help stays quick
    from PIL import Image

AGREEMENT_PHOTOS = 8


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    model = commands.add_parser("model", **described("model"))
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION", help="what to do")
    export = actions.add_parser(
        "export", parents=options.only("data"),
        **described("model export", summary="export a Hugging Face CLIP or image model to an int8 ONNX model "
                                            "folder (needs photosorter[export])",
                    examples=("photosorter model export openai/clip-vit-base-patch32 models/clip-b32 --images ~/p",
                              "photosorter model export google/vit-base-patch16-224 models/vit")))
    export.add_argument("source", help="hub id (e.g. openai/clip-vit-base-patch32) or local model folder")
    export.add_argument("out", type=Path, help="model folder to write (must be new or empty)")
    export.add_argument("--images", type=Path,
                        help=f"folder of photos to compare float and int8 embeddings on (first {AGREEMENT_PHOTOS})")
    export.add_argument("--name", help="model name in the manifest (default: the source's last part)")
    export.add_argument("--no-quantize", dest="quantize", action="store_false", help="keep float32 weights")
    export.add_argument("--keep-float", action="store_true", help="also keep the float32 graphs in the folder")
    export.set_defaults(handler=run_export)
    quantize = actions.add_parser(
        "quantize", parents=options.only("data"),
        **described("model quantize", summary="int8-quantize an exported ONNX file",
                    examples=("photosorter model quantize model.onnx model_quantized.onnx --ops MatMul",)))
    quantize.add_argument("source", type=Path, help="float ONNX file")
    quantize.add_argument("target", type=Path, nargs="?", help="output file (default: <source>_quantized.onnx)")
    quantize.add_argument("--ops", default=",".join(DEFAULT_OPS),
                          help="operator types to quantize (default: %(default)s; see photosorter/ml/quantize.py)")
    quantize.add_argument("--per-tensor", action="store_true", help="one scale per weight tensor, not per channel")
    quantize.set_defaults(handler=run_quantize)
    reference = actions.add_parser(
        "reference", parents=options.only("data"),
        **described("model reference", summary="write the self-check references of a model folder from its "
                                               "float32 graph",
                    examples=("photosorter model reference models/clip-b32 vision_model.onnx",)))
    reference.add_argument("folder", type=Path, help="model folder (its manifest gets the references)")
    reference.add_argument("float_graph", help="the float32 image graph in that folder, e.g. vision_model.onnx")
    reference.add_argument("--output", type=Path, help="write the entry to this JSON file instead of the manifest")
    reference.set_defaults(handler=run_reference)
    check = actions.add_parser(
        "check", parents=options.only("data", "model"),
        **described("model check", summary="run the model's self-check on this CPU now and print the figure",
                    examples=("photosorter model check --model mobilenet-v2",)))
    check.set_defaults(handler=run_check)


def _sample_images(folder: Path | None, settings: Settings) -> list[Image.Image]:
    if folder is None:
        return []
    if not folder.is_dir():
        raise ConfigError([f"images: {folder} is not a folder"])
    from photosorter.adapters.files import LocalFiles
    from photosorter.adapters.images import decode_image

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


def run_reference(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses
    import json

    from photosorter.ml.catalogue import CATALOGUE
    from photosorter.ml.modelspec import MANIFEST, read_model_folder
    from photosorter.ml.selfcheck import make_self_check

    spec = read_model_folder(args.folder, CATALOGUE)
    if not (args.folder / args.float_graph).is_file():
        raise ConfigError([f"reference: {args.folder / args.float_graph} is not a file"])
    entry = make_self_check(dataclasses.replace(spec, image_file=args.float_graph), float_graph=args.float_graph)
    if args.output is not None:
        args.output.write_text(json.dumps(entry) + "\n", encoding="utf-8")
        print(f"wrote the self-check references of {spec.name} to {args.output}")
        return 0
    manifest_path = args.folder / MANIFEST
    if not manifest_path.is_file():
        raise ConfigError([f"reference: {args.folder} has no {MANIFEST}; give --output FILE"])
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["self_check"] = entry
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote the self-check references of {spec.name} into {manifest_path}")
    return 0


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import load_model
    from photosorter.ml.selfcheck import RECORD_FILE, check_on_this_cpu, last_check

    spec = load_model(settings)
    (settings.library.data / RECORD_FILE).unlink(missing_ok=True)  # run it now, not from the record
    check_on_this_cpu(spec, settings.library.data, settings.model.threads)
    result = last_check(settings.library.data)
    if result is None:
        print(f"model {spec.name} carries no self-check references")
        return 0
    print(f"model check: {result.model} on {result.cpu}: cosine {result.min_cosine:.5f} to its float32 reference "
          f"({'ok' if result.ok else 'below 0.99'}; graph in use: {result.graph})")
    return 0 if result.ok or result.fell_back else 1
