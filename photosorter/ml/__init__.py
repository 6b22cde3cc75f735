"""Model loading, preprocessing and inference (onnxruntime, usearch)."""
