"""Sizes checked before anything is allocated, each refused in one line naming its limit.

A 2 MB ``.npz`` can hold a member that inflates to gigabytes; a spec whose frame rate was
tampered with, or an in-range ``--window 600``, makes buffers and model inputs of
gigabytes; a deeply nested JSON file overflows the parser's recursion. Each of these is a
user's input, so each is one ``Error:`` line, never a traceback or an out-of-memory kill.
"""
from __future__ import annotations

import json
import math

from ..errors import InputError

#: Largest array in a replay or data ``.npz``, decompressed (the CMU-MOSI file's 19
#: arrays take 2.6 MB together).
NPZ_MEMBER_BYTES = 1 << 30
#: Largest total of a ``.npz``'s arrays, decompressed.
NPZ_TOTAL_BYTES = 2 << 30
#: Frames of one modality in one window: at most this many times the frames the model
#: was trained on (its attention memory grows with the square of the frame count) ...
WINDOW_FRAMES_FACTOR = 16
#: ... and never more than this.
WINDOW_FRAMES_MAX = 4096
#: A stream's frame buffers, all modalities together.
STREAM_BUFFER_BYTES = 512 << 20


def gib(n: float) -> str:
    return f"{n / (1 << 30):.3g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.3g} MiB"


def check_npz(z, path: str, error=InputError) -> None:
    """Refuse an ``np.load``-ed archive whose arrays would be too large, before reading
    any of them (the sizes come from the members' ``.npy`` headers)."""
    total = 0
    for name in z.files:
        try:
            shape, dtype = _npy_header(z.zip, name + ".npy")
        except Exception:  # noqa: BLE001 - a corrupt member: reading it says so, as usual
            continue
        n = math.prod(shape) * dtype.itemsize
        if n > NPZ_MEMBER_BYTES:
            raise error(f"{path}: array '{name}' {shape} would take {gib(n)} in memory; the "
                        f"limit is {gib(NPZ_MEMBER_BYTES)} per array; split the recording")
        total += n
    if total > NPZ_TOTAL_BYTES:
        raise error(f"{path}: its arrays would take {gib(total)} in memory; the limit is "
                    f"{gib(NPZ_TOTAL_BYTES)}; split the recording")


def _npy_header(zf, member: str):  # zf: a zipfile.ZipFile (not imported here: cold start)
    import numpy as np

    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return tuple(int(x) for x in shape), dtype


def check_window(spec, window_s: float, buffer_s: float, option: str = "--window") -> None:
    """Refuse a window whose frames, or a stream whose buffers, are too large."""
    for m in spec.modalities:
        rate, trained = spec.features[m].frame_rate_hz, spec.frames(m)
        frames = math.ceil(window_s * rate)
        limit = min(WINDOW_FRAMES_MAX, WINDOW_FRAMES_FACTOR * trained)
        if frames > limit:
            raise InputError(f"{option} {window_s:g}: {frames} {m} frames per window "
                             f"({window_s:g} s x {rate:g} Hz), over the limit of {limit} "
                             f"({WINDOW_FRAMES_FACTOR}x the {trained} the model was trained on; "
                             "its memory grows with the square); use "
                             f"{option} <= {limit / rate:g}")
    need = sum(max(64, math.ceil(spec.features[m].frame_rate_hz * max(buffer_s, 2 * window_s)))
               * spec.dim(m) * 4 for m in spec.modalities)
    if need > STREAM_BUFFER_BYTES:
        raise InputError(f"buffers: {gib(need)} per stream (buffer_s {buffer_s:g} s at the "
                         f"spec's frame rates and dims); the limit is "
                         f"{gib(STREAM_BUFFER_BYTES)}; lower buffer_s")


def load_json(f, what: str, error=InputError):
    """``json.load`` whose nesting too deep for the parser is one line (``error``)."""
    try:
        return json.load(f)
    except RecursionError:
        raise error(f"{what}: JSON nested too deeply to parse; pass a flat file as "
                    "documented") from None
