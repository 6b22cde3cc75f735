"""8-bit weights for an exported ONNX model with onnxruntime's dynamic quantization.

Which operators, and why:

- ``MatMul`` — every linear layer of a transformer (attention Q/K/V/output, the two MLP layers, the
  final projection) is a MatMul: nearly all the weights and FLOPs of a ViT or a CLIP text tower.
  Dynamic quantization stores the weights in 8 bits (per output channel: one scale per column keeps
  outlier columns from flattening the others) and quantizes each activation on the fly from its
  own min/max. Transformer activations vary a lot from input to input (a few outlier channels), so a
  range calibrated once on sample photos (static quantization) fits them badly; computing it per call
  costs one pass over the activation and needs no calibration set.
- ``Gather`` — the token embedding table of a text tower (49408 x 512 floats, ~100 MB in CLIP
  ViT-B/32) is a Gather: weight-only int8, a lookup then one dequantize per token. 4x smaller, and a
  lookup loses nothing to activation rounding.
- not ``Conv`` — the ViT patch embedding is one Conv on raw pixels: a small share of the compute, the
  layer most sensitive to rounding, and per-tensor activation ranges on pixels are crude. CNN image
  models (MobileNet, ResNet) are mostly Conv: quantize those statically or with quantization-aware
  training (as the shipped MobileNetV2 was), not with this step.
- LayerNorm, Softmax, GELU and additions stay float: they hold no weights worth shrinking and
  are where int8 error would compound.

Why *unsigned* weights (uint8 with a zero point), not int8: activations are uint8, and on x86 CPUs
without VNNI (AVX2 only: Zen 1/2, older NUCs, Celerons) onnxruntime multiplies uint8 x int8 with
``vpmaddubsw``, which adds two products into a *saturating* int16: 2 x 255 x 127 overflows it, so
outputs depend on the CPU. uint8 x uint8 takes a widening kernel that never saturates, on every CPU.
Measured on the tiny random-weight CLIP text tower of tests/test_export.py (cosine to float32 over
32 prompts, min / mean), on this machine (AVX-512 VNNI) and under ``qemu-x86_64 -cpu EPYC`` (Zen 1,
AVX2, no VNNI):

    weights                        with VNNI          without VNNI
    int8 per channel (before)      0.99747 / 0.99955  0.89635 / 0.98058
    int8 per channel, reduce_range 0.99750 / 0.99911  0.99750 / 0.99911
    int8 per tensor                0.99734 / 0.99927  0.98028 / 0.99862
    uint8 per channel (chosen)     0.99843 / 0.99963  0.99843 / 0.99963

``reduce_range`` (7-bit weights) also avoids the overflow but throws away a bit of precision; uint8
per channel is both CPU-independent and the closest to float32 (and not slower here).

``onnx`` (a dependency of onnxruntime's quantization tools) is imported lazily: the runtime image
does not need it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from photosorter.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

DEFAULT_OPS = ("MatMul", "Gather")
INSTALL_HINT = "pip install 'photosorter[export]' (or just: pip install onnx)"


@dataclass(frozen=True)
class QuantizeResult:
    source: Path
    target: Path
    bytes_before: int
    bytes_after: int
    ops: tuple[str, ...]


def quantize_onnx(source: Path, target: Path, ops: tuple[str, ...] = DEFAULT_OPS,
                  per_channel: bool = True) -> QuantizeResult:
    """Write ``target``: ``source`` with uint8 weights for ``ops`` (dynamic activation quantization)."""
    if not source.is_file():
        raise ConfigError([f"quantize: {source} is not a file"])
    if source.resolve() == target.resolve():
        raise ConfigError([f"quantize: the output must differ from the input ({source})"])
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigError([f"quantize: onnxruntime's quantization tools need the onnx package: {INSTALL_HINT}"]) \
            from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    # The quantizer logs a line per tensor (and advice) through the root logger; silence it meanwhile.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(str(source), str(tmp), op_types_to_quantize=list(ops), per_channel=per_channel,
                         weight_type=QuantType.QUInt8)
    except Exception as exc:  # onnx/onnxruntime raise a variety of untyped errors
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot quantize {source}: {exc}") from exc
    finally:
        logging.disable(logging.NOTSET)
    tmp.replace(target)
    result = QuantizeResult(source, target, source.stat().st_size, target.stat().st_size, ops)
    log.info("quantized %s -> %s: %.1f MB -> %.1f MB (%s)", source.name, target.name, result.bytes_before / 1e6,
             result.bytes_after / 1e6, ", ".join(ops))
    return result
