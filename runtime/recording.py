"""One timestamped multimodal stream with its sentiment trajectory (the unit that the
synthetic generator, the MOSI reader, replays and the demo stream share; its own module so
that a stream does not import the dataset code)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Recording:
    """One timestamped multimodal stream.

    Attributes:
        id: recording (video) id.
        duration_s: length in seconds.
        times: modality -> (N_m,) ascending timestamps in seconds.
        frames: modality -> (N_m, d_m) float32 raw features.
        knots: (K,) ascending times where the sentiment trajectory changes value.
        values: (K,) sentiment in [-3, 3] from ``knots[i]`` until ``knots[i+1]``.
    """

    id: str
    duration_s: float
    times: dict[str, np.ndarray]
    frames: dict[str, np.ndarray]
    knots: np.ndarray
    values: np.ndarray

    def window_starts(self, window_s: float, hop_s: float) -> np.ndarray:
        """Starts of all full windows: 0, hop, 2*hop, ... while start + window <= duration."""
        n = int(np.floor((self.duration_s - window_s) / hop_s + 1e-9)) + 1
        return np.arange(max(n, 0)) * hop_s

    def label(self, starts: np.ndarray, window_s: float) -> np.ndarray:
        """Mean sentiment over each window ``[start, start + window_s)``."""
        edges = np.append(self.knots, np.inf)
        out = np.empty(len(starts), np.float64)
        for i, t0 in enumerate(starts):
            lo = np.clip(edges[:-1], t0, t0 + window_s)
            hi = np.clip(edges[1:], t0, t0 + window_s)
            out[i] = np.sum((hi - lo) * self.values) / window_s
        return out.astype(np.float32)
