"""onnxruntime inference: image embeddings (+ classifier probabilities) and CLIP text embeddings."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from photosorter.errors import ModelError
from photosorter.ml.modelspec import ModelSpec
from photosorter.ml.preprocess import to_tensor


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # intra_op: the CPU threads one inference may use; the box has 2 cores and decoding runs in
    # parallel on another thread, so more would only contend.
    options.intra_op_num_threads = threads
    # inter_op: parallel branches; these graphs are chains, extra threads only add spin-wait overhead.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads burn the core the decoder needs between calls.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load model file {path}: {exc}") from exc


def _normalise(vectors: np.ndarray) -> np.ndarray:
    flat = vectors.reshape(vectors.shape[0], -1).astype(np.float32)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return np.asarray(flat / np.maximum(norms, 1e-12), dtype=np.float32)


class OnnxEmbedder:
    """Loads lazily (under a lock) and runs the model folder described by ``spec``."""

    def __init__(self, spec: ModelSpec, threads: int = 2) -> None:
        self.spec = spec
        self._threads = threads
        self._lock = threading.Lock()
        self._image: ort.InferenceSession | None = None
        self._text: ort.InferenceSession | None = None

    @property
    def max_batch(self) -> int:
        return self.spec.batch or 8

    def _image_session(self) -> ort.InferenceSession:
        with self._lock:
            if self._image is None:
                self._image = _session(self.spec.folder / self.spec.image_file, self._threads)
            return self._image

    def embed_images(self, pixels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """L2-normalised embeddings ``[n, d]`` and, for classifiers, class probabilities ``[n, classes]``."""
        session = self._image_session()
        outputs = [self.spec.embedding_output]
        if self.spec.logits_output:
            outputs.append(self.spec.logits_output)
        step = self.max_batch
        embeddings, probabilities = [], []
        for start in range(0, len(pixels), step):
            tensor = to_tensor(pixels[start:start + step], self.spec.preprocess)
            try:
                result = session.run(outputs, {self.spec.image_input: tensor})
            except Exception as exc:
                raise ModelError(f"inference failed: {exc}") from exc
            embeddings.append(_normalise(result[0]))
            if self.spec.logits_output:
                logits = result[1].reshape(result[1].shape[0], -1).astype(np.float64)
                logits -= logits.max(axis=1, keepdims=True)
                exp = np.exp(logits)
                probabilities.append(exp / exp.sum(axis=1, keepdims=True))
        return np.concatenate(embeddings), (np.concatenate(probabilities) if probabilities else None)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings for CLIP-family models."""
        text = self.spec.text
        if text is None:
            raise ModelError(f"model {self.spec.name} has no text encoder")
        from tokenizers import Tokenizer  # only CLIP-family models need it

        with self._lock:
            if self._text is None:
                self._text = _session(self.spec.folder / text.file, self._threads)
            session = self._text
        tokenizer = Tokenizer.from_file(str(self.spec.folder / text.tokenizer))
        tokenizer.enable_truncation(text.context_length)
        tokenizer.enable_padding(length=text.context_length, pad_id=tokenizer.token_to_id("<|endoftext|>") or 0)
        encoded = tokenizer.encode_batch(texts)
        feeds = {text.input_ids: np.asarray([e.ids for e in encoded], dtype=np.int64)}
        if text.attention_mask:
            feeds[text.attention_mask] = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
        try:
            (result,) = session.run([text.output], feeds)
        except Exception as exc:
            raise ModelError(f"text inference failed: {exc}") from exc
        return _normalise(result)
