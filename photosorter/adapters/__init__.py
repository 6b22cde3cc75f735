"""One third-party library or outside system each; only the composition root wires them."""
