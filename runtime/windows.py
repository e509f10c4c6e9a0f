"""Packing due windows into the model's feeds (numpy or the fused CUDA kernel)."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from ..kernels.pack import pack_windows, resolve_device
from ..kernels.pack_ref import pack_segments_numpy
from .spec import MODALITIES, MODALITY_MASK, ModelSpec, frame_mask_name

#: |z-score| beyond which a packed slot is treated as broken: finite in FP16 (max 65504).
Z_LIMIT = 1e4


class Packer:
    """Turns the buffered frames of a batch of windows into feeds.

    Args:
        spec: the model spec.
        window_s: the session's window (may override the spec's).
        device: ``cpu``, ``cuda`` or ``auto`` (decided, and logged, once).
        acct: the session's accounting (``slots_out_of_range``).
    """

    def __init__(self, spec: ModelSpec, window_s: float, device: str, acct):
        self.spec, self.window_s, self.acct = spec, window_s, acct
        self.n_frames = {m: max(1, round(window_s * spec.features[m].frame_rate_hz))
                         for m in MODALITIES}
        self.norm = {m: (np.asarray(spec.norm[m]["mean"], np.float32),
                         np.asarray(spec.norm[m]["std"], np.float32)) for m in MODALITIES}
        self.device = resolve_device(device)
        # the spec as packed: a window override changes the frames per window (the model's
        # own window shares its spec: a hub of thousands of streams keeps one)
        same = window_s == spec.window_s and all(
            spec.features[m].frames == self.n_frames[m] for m in MODALITIES)
        self.pack_spec = spec if same else spec.replace(window_s=window_s, features={
            m: dataclasses.replace(spec.features[m], frames=self.n_frames[m]) for m in MODALITIES})

    def pack(self, buffers: dict, starts: list[float], monotonic) -> tuple[dict, float, float]:
        """Feeds for windows starting at ``starts``; returns (feeds, pack seconds, start)."""
        t_start, t_perf = monotonic(), time.perf_counter()
        starts = np.asarray(starts, np.float64)
        present = np.zeros((len(starts), len(MODALITIES)), np.float32)
        if self.device == "cuda":  # every modality in one kernel launch
            feeds = pack_windows(self.pack_spec, {m: (b.frames(), b.times())
                                                  for m, b in buffers.items()},
                                 starts, device="cuda")
        else:
            feeds = {}
            for m in MODALITIES:
                b, f = buffers[m], self.spec.features[m]
                feeds[m], feeds[frame_mask_name(m)] = pack_segments_numpy(
                    b.frames(), b.times(), starts, window_s=self.window_s,
                    rate_hz=f.frame_rate_hz, n_frames=self.n_frames[m],
                    mean=self.norm[m][0], std=self.norm[m][1])
        for i, m in enumerate(MODALITIES):
            x, mask = feeds[m], feeds[frame_mask_name(m)]
            if not (np.minimum.reduce(x, axis=None, initial=0.0) >= -Z_LIMIT
                    and np.maximum.reduce(x, axis=None, initial=0.0) <= Z_LIMIT):
                self._mask_out_of_range(x, mask)
            present[:, i] = mask.any(axis=1)
        feeds[MODALITY_MASK] = present
        return feeds, time.perf_counter() - t_perf, t_start

    def _mask_out_of_range(self, x: np.ndarray, mask: np.ndarray) -> None:
        """Zero and mask slots whose z-scores are absurd (a finite but broken frame), so that
        no Inf reaches the model, FP16 included; counted as ``slots_out_of_range``."""
        bad = ~(np.abs(x) <= Z_LIMIT).all(axis=-1)
        x[bad] = 0.0
        mask[bad] = 0.0
        with self.acct.lock:
            self.acct.slots_out_of_range += int(bad.sum())

    @staticmethod
    def present(feeds: dict, i: int) -> tuple[list, dict]:
        """(modalities present, valid frame slots per modality) of row ``i``."""
        mods = [m for j, m in enumerate(MODALITIES) if feeds[MODALITY_MASK][i, j] > 0]
        return mods, {m: int(feeds[frame_mask_name(m)][i].sum()) for m in MODALITIES}
