"""The harder synthetic benchmark: low frame rates, bursty frame loss, long test-time gaps.

The default synthetic data (:mod:`hrlf.runtime.synthetic`) has 8/40/20 frames per window
and no lost frames, and its intra-modality test drops frames independently: a
transformer interpolates over such holes easily, so a hierarchy of representations has
little to do. Here:

* **low frame rates**: text 1 Hz, audio 4 Hz, vision 2 Hz over 4 s windows (4/16/8 frames);
* **bursty loss in the data itself**: every modality of every split loses 30 % of its
  frames in bursts of 2 s on average (a two-state Gilbert process,
  :func:`hrlf.runtime.synthetic.burst_keep`), so the windows are ragged before any test;
* **long test-time gaps**: the intra-modality axis removes one contiguous run of
  ``round(ratio * frames)`` slots per sample and modality (:func:`burst_drop`), next to
  the independent drops of the standard protocol (:func:`hrlf.runtime.protocol.drop_frames`).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..runtime import protocol
from ..runtime.spec import MODALITIES, frame_mask_name

#: :class:`hrlf.runtime.synthetic.SyntheticConfig` overrides of the harder benchmark.
HARDER = {"videos": {"train": 40, "valid": 10, "test": 20}, "window_s": 4.0, "hop_s": 2.0,
          "rates_hz": {"text": 1.0, "audio": 4.0, "vision": 2.0},
          "drop_fraction": 0.3, "drop_burst_s": 2.0}


def burst_drop(batch: Mapping[str, np.ndarray], ratio: float,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Remove one contiguous run of ``round(ratio * T)`` frame slots per sample and modality.

    The run starts uniformly at random where it fits; the removed slots get mask 0 and
    zero features. ``ratio = 1`` removes every frame.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"burst ratio {ratio}: must be in [0, 1]")
    out = protocol.copy_batch(batch)
    for m in MODALITIES:
        fm = out[frame_mask_name(m)]
        b, t = fm.shape
        k = int(np.floor(ratio * t + 0.5))
        start = rng.integers(0, t - k + 1, size=b)
        slot = np.arange(t)[None, :]
        gone = (slot >= start[:, None]) & (slot < start[:, None] + k)
        out[frame_mask_name(m)] = np.where(gone, 0.0, fm).astype(np.float32)
        out[m] = (out[m] * out[frame_mask_name(m)][..., None]).astype(np.float32)
    return out


#: intra-axis corruptions of the benchmark: name -> f(batch, ratio, rng)
INTRA_MODES = {"burst": burst_drop, "independent": protocol.drop_frames}
