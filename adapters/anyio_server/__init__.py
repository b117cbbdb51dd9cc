"""The standalone server on anyio with h11 and h2 (``kiro2api serve``)."""
