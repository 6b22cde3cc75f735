"""onnxruntime inference: image embeddings (+ classifier probabilities) and CLIP text embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from photosorter.errors import ModelError
from photosorter.ml.lifetime import ModelLifetime
from photosorter.ml.modelspec import ModelSpec
from photosorter.ml.preprocess import to_tensor
from photosorter.ml.runtime import GraphChoice, Session, choose_image_graph


def _normalise(vectors: np.ndarray) -> np.ndarray:
    flat = vectors.reshape(vectors.shape[0], -1).astype(np.float32)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return np.asarray(flat / np.maximum(norms, 1e-12), dtype=np.float32)


class OnnxEmbedder:
    """Runs the model folder described by ``spec``; its sessions are loaded when first needed and
    released when idle by ``lifetime``. ``fastest_graph``: where the folder also holds the float32 graph,
    run whichever is faster on this CPU (measured once, remembered in ``cache_dir``); otherwise, and for
    evaluation and export checks that must not depend on the CPU, the graph the manifest names."""

    def __init__(self, spec: ModelSpec, threads: int = 2, lifetime: ModelLifetime | None = None,
                 cache_dir: Path | None = None, fastest_graph: bool = False) -> None:
        self.spec = spec
        self._threads = threads
        self.lifetime = lifetime or ModelLifetime()
        self._cache_dir = cache_dir
        self._fastest_graph = fastest_graph
        self.graph: GraphChoice | None = None  # which image graph runs, known after the first load

    @property
    def max_batch(self) -> int:
        return self.spec.batch or 8

    def _image_session(self) -> Session:
        return self.lifetime.hold(f"{self.spec.name} image", self._load_image)

    def _load_image(self) -> Session:
        if self.graph is None:  # the first load measures (or recalls) which graph is faster here
            self.graph, session = choose_image_graph(self.spec, self._threads, self._cache_dir,
                                                     measure=self._fastest_graph, opener=self.lifetime.open_session)
            return session
        return self.lifetime.open_session(self.spec.folder / self.graph.file, self._threads)

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

        session = self.lifetime.hold(f"{self.spec.name} text",
                                     lambda: self.lifetime.open_session(self.spec.folder / text.file, self._threads))
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
