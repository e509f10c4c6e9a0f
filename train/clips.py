"""``hrlf-train --data clips.csv``: train on your own labelled clips.

The CSV has a header with the columns ``media`` (video or audio file, relative to the CSV),
``label`` (sentiment in [-3, 3], constant over the clip) and optionally ``transcript``
(the words, or a ``.srt``/``.jsonl`` file; empty: the media's sidecar transcript, if any)
and ``split`` (``train``/``valid``/``test``; empty: assigned by hashing the clip).

Features come from the featurizers the runtime uses (:mod:`hrlf.runtime.featurizers`),
through the same ``file:`` source code (:func:`hrlf.runtime.capture.sources.file_tracks`),
so ``hrlf-run --stream file:clip.avi`` feeds the model what it was trained on. They are
cached in ``cache_dir`` (default ``.hrlf-cache`` next to the CSV), keyed by the sha256 of
the media, its sidecar audio and transcript, and the featurizer names.

Clips are cut into 2 s windows every 1 s (a clip shorter than a window gives one window,
padded with masked slots), and split by clip: no clip spans two splits.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os

import numpy as np

from ..runtime import featurizers as fz
from ..runtime.datasets import Dataset, Recording, pack_recordings
from ..errors import BackendUnavailable, DataError, HrlfError, suggest
from ..runtime.spec import MODALITIES, sha256_file

log = logging.getLogger("hrlf.train")
WINDOW_S = 2.0
HOP_S = 1.0
SPLITS = ("train", "valid", "test")
COLUMNS = ("media", "transcript", "label", "split")
CACHE_VERSION = 2  # 2: the voice gate's energy floor; the recognizer in the key
#: Model slots per second where a featurizer emits faster: 100 Hz audio frames are averaged
#: into 50 ms slots (the runtime packs by the spec's rate, so it does the same). 200 audio
#: tokens per 2 s window made every training step ~5x slower for no accuracy.
SLOT_RATE_HZ = {"audio": 20.0}


def load_clips(path: str, cache_dir: str | None = None, window_s: float = WINDOW_S,
               hop_s: float = HOP_S, featurizers: dict | None = None,
               progress: bool = False, splits=SPLITS, new_clips_split: str | None = None,
               trained_on: str | None = None, asr="auto",
               asr_model: str | None = None) -> Dataset:
    """Load a clip list into train/valid/test windows (or only the ``splits`` asked for).

    Args:
        path: the CSV file.
        cache_dir: feature cache folder (None: ``.hrlf-cache`` next to the CSV).
        window_s, hop_s: windowing of each clip.
        featurizers: modality -> featurizer name (None: the runtime defaults).
        progress: progress while clips are featurized (:mod:`hrlf.train.progress`).
        splits: the splits to load; only their clips are featurized.
        new_clips_split, trained_on: evaluation of new clips: when this clip list is not
            the one a model was trained on (its sha256 differs from ``trained_on``), every
            clip without a split cell goes to ``new_clips_split`` instead of a hashed split.
        asr, asr_model: the recognizer for clips without a transcript (``--asr``, see
            :mod:`hrlf.runtime.capture.asr_engines`); recorded in the text modality's spec
            (``features.text.asr``) when a clip was recognized.

    Returns:
        A :class:`~hrlf.runtime.datasets.Dataset` named ``clips``.

    Raises:
        DataError: unreadable CSV, missing column, missing media, label out of range, a
            featurizer that cannot run here, a split without clips (before any clip is
            featurized), or a modality without any frames in train (one line each).
    """
    path = os.fspath(path)
    rows = read_clip_csv(path)
    names = {**fz.default_names(), **dict(featurizers or {})}
    _check_featurizers(path, names)
    cache_dir = cache_dir or os.path.join(os.path.dirname(os.path.abspath(path)), ".hrlf-cache")
    from .featurize import featurize_rows

    keys = [clip_key(row, names) for row in rows]  # the clip list's identity and splits
    digest = _digest(path, keys)
    new = trained_on is not None and digest != trained_on
    split_of = assign_splits(rows, keys, new_clips_split if new else None)
    for s in splits:
        if s not in split_of:
            raise DataError(f"{path}: split '{s}' has no clip ({len(rows)} clips: "
                            f"{_counts(split_of)}); add clips or set the split column")
    if new and new_clips_split:
        log.info("%s: not the clip list the model was trained on; its %d clips without a "
                 "split are in '%s'", path, sum(not r["split"] for r in rows), new_clips_split)
    use = [i for i, sp in enumerate(split_of) if sp in splits]
    heard = {i: needs_asr(rows[i]) for i in use}
    choice, tag = _asr_choice(path, asr, asr_model, any(heard.values()))
    feature_keys = [clip_key(rows[i], names, tag) if heard[i] else keys[i] for i in use]
    datas = featurize_rows([rows[i] for i in use], feature_keys, names, cache_dir, progress,
                           asr=choice)
    recs = {i: _recording(rows[i], data, window_s) for i, data in zip(use, datas)}
    features = {m: slot_spec(names[m], window_s) for m in MODALITIES}
    if choice.engine is not None and any(heard.values()):
        import dataclasses
        import json

        features["text"] = dataclasses.replace(
            features["text"], asr={**json.loads(tag), "clips": int(sum(heard.values()))})
    packed = {s: pack_recordings([recs[i] for i in use if split_of[i] == s], features,
                                 window_s, hop_s) for s in splits}
    if "train" in packed:
        _check_frames(path, packed["train"])
    fingerprint = {"source": "clips-csv", "sha256": digest,
                   "file": os.path.basename(path), "clips": len(rows), "featurizers": names,
                   "clip_splits": {s: split_of.count(s) for s in SPLITS},
                   "sizes": {s: len(v) for s, v in packed.items()}}
    return Dataset("clips", packed, features, window_s=window_s, hop_s=hop_s,
                   fingerprint=fingerprint)


def _digest(path: str, keys: list[str]) -> str:
    """The clip list's fingerprint: sha256 over the CSV's bytes and every clip's key."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read())
    for k in keys:
        digest.update(k.encode())
    return digest.hexdigest()


def _counts(split_of: list[str]) -> str:
    return ", ".join(f"{split_of.count(s)} {s}" for s in SPLITS)


def needs_asr(row: dict) -> bool:
    """True when a clip's text must be recognized: no transcript column, no sidecar."""
    from ..runtime.capture.transcripts import sidecar_transcript

    return row["transcript"] is None and sidecar_transcript(row["media"]) is None


def _asr_choice(path: str, asr, asr_model, needed: bool):
    """The recognizer for this clip list and its tag (``{"engine", "model"}`` as JSON)."""
    import json

    from ..runtime.capture import asr_engines

    if not needed:
        return asr_engines.AsrChoice(None, why="every clip has a transcript"), ""
    try:
        choice = asr_engines.choose(asr, asr_model)
        return choice, json.dumps(asr_engines.describe(choice), sort_keys=True)
    except HrlfError as e:
        raise DataError(f"{path}: {e}") from None


def slot_spec(name: str, window_s: float):
    """The spec entry of featurizer ``name``, at :data:`SLOT_RATE_HZ` where that is slower."""
    import dataclasses

    f = fz.modality_spec(name, window_s)
    rate = SLOT_RATE_HZ.get(fz.info(name).modality)
    if rate is None or rate >= f.frame_rate_hz:
        return f
    return dataclasses.replace(f, frame_rate_hz=rate, frames=max(1, round(window_s * rate)))


def read_clip_csv(path: str) -> list[dict]:
    """Rows of the clip CSV, checked: ``media`` (absolute), ``label``, ``transcript``, ``split``.

    Raises:
        DataError: one line naming the file, row (line number) and the problem.
    """
    header, raw = _read_csv_rows(path)
    for col in ("media", "label"):
        if col not in header:
            raise DataError(f"{path}: missing column '{col}'{suggest(col, header)} (header: "
                            f"{','.join(header) or 'empty'}); the header must be "
                            "media,transcript,label")
    if not raw:
        raise DataError(f"{path}: no clips listed; add one row per clip under the header")
    base = os.path.dirname(os.path.abspath(path))
    rows = []
    for line, r in enumerate(raw, start=2):
        where = f"{path}:{line}"
        media = os.path.join(base, r["media"]) if r["media"] else ""
        if not r["media"] or not os.path.isfile(media):
            raise DataError(f"{where}: media file '{r['media']}' not found ({media or 'empty'}); "
                            "paths are relative to the CSV")
        try:
            label = float(r["label"])
        except ValueError:
            raise DataError(f"{where}: label '{r['label']}' is not a number; use a value in "
                            "[-3, 3]") from None
        if not np.isfinite(label) or not -3.0 <= label <= 3.0:
            raise DataError(f"{where}: label {r['label']} is outside [-3, 3]; fix the label")
        split = r.get("split", "")
        if split and split not in SPLITS:
            raise DataError(f"{where}: split '{split}' is not one of {list(SPLITS)}"
                            f"{suggest(split, SPLITS)}")
        rows.append({"line": line, "media": media, "name": r["media"], "label": label,
                     "transcript": _transcript(r.get("transcript", ""), base, where),
                     "split": split})
    return rows


def _read_csv_rows(path: str) -> tuple[list[str], list[dict]]:
    """Header and stripped rows of a UTF-8 CSV (a spreadsheet's byte-order mark is fine)."""
    fix = "save it as a UTF-8 CSV with the columns media,transcript,label"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read the clip list ({e.strerror}); pass --data "
                        "clips.csv with columns media,transcript,label") from None
    if b"\0" in data:
        raise DataError(f"{path}: binary data (NUL byte at offset {data.index(0)}), not a CSV "
                        f"text file; {fix}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                        f"{e.start}); {fix}") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): _cell(v) for k, v in r.items()} for r in reader]
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({e}); {fix}") from None
    return header, rows


def _cell(v) -> str:
    # a row longer than the header puts its extra cells in a list under the key None
    return ",".join(v).strip() if isinstance(v, list) else (v or "").strip()


def _transcript(value: str, base: str, where: str):
    """None (use the sidecar), ``("file", path)`` or ``("text", words)``."""
    if not value:
        return None
    if value.lower().endswith((".srt", ".jsonl")):
        p = os.path.join(base, value)
        if not os.path.isfile(p):
            raise DataError(f"{where}: transcript file '{value}' not found ({p}); paths are "
                            "relative to the CSV")
        return ("file", p)
    return ("text", value)


def _check_featurizers(path: str, names: dict) -> None:
    try:
        fz.make_text(names["text"])
        fz.make_vision(names["vision"])
        fz.make_audio(names["audio"], 16000)
    except (BackendUnavailable, HrlfError) as e:
        raise DataError(f"{path}: cannot extract features here: {e}") from None


def clip_key(row: dict, names: dict, asr: str = "") -> str:
    """sha256 over the clip's media, sidecar audio/transcript, transcript, featurizers and
    (for a clip whose text is recognized) the recognizer ``asr``."""
    from ..runtime.capture.media import AUDIO_EXTS
    from ..runtime.capture.transcripts import TRANSCRIPT_EXTS

    h = hashlib.sha256(f"clips-cache-v{CACHE_VERSION}|{sorted(names.items())}|{asr}".encode())
    h.update(sha256_file(row["media"]).encode())
    stem = os.path.splitext(row["media"])[0]
    for ext in AUDIO_EXTS + TRANSCRIPT_EXTS:
        if os.path.isfile(stem + ext) and stem + ext != row["media"]:
            h.update(f"{ext}:{sha256_file(stem + ext)}".encode())
    tr = row["transcript"]
    if tr is not None:
        h.update(f"{tr[0]}:{sha256_file(tr[1]) if tr[0] == 'file' else tr[1]}".encode())
    return h.hexdigest()


def assign_splits(rows: list[dict], keys: list[str], unsplit: str | None = None) -> list[str]:
    """Split per clip: the ``split`` column where given, else ``unsplit`` if given, else by
    hash order (70/15/15).

    Deterministic: clips are ordered by sha256 of their media name; the first ~15 % go to
    test, the next ~15 % to valid (at least one each when three or more clips are unset).
    """
    free = [i for i, r in enumerate(rows) if not r["split"]]
    out = [r["split"] or unsplit or "" for r in rows]
    if unsplit:
        return out
    order = sorted(free, key=lambda i: hashlib.sha256(rows[i]["name"].encode()).hexdigest())
    n = len(order)
    n_hold = max(1, round(0.15 * n)) if n >= 3 else 0
    for rank, i in enumerate(order):
        out[i] = "test" if rank < n_hold else "valid" if rank < 2 * n_hold else "train"
    return out


def _recording(row: dict, data: dict, window_s: float) -> Recording:
    rid = f"{row['line'] - 1:04d}:{row['name']}"
    return Recording(id=rid, duration_s=max(float(data["duration"]), window_s),
                     times={m: data[f"times_{m}"] for m in MODALITIES},
                     frames={m: data[f"frames_{m}"] for m in MODALITIES},
                     knots=np.zeros(1), values=np.array([row["label"]], np.float64))


def _check_frames(path: str, train) -> None:
    for m in MODALITIES:
        if train.masks[m].sum() > 0:
            continue
        if m == "vision":
            why = "no face was detected in any training clip's video"
        elif m == "text":
            why = ("no training clip has a transcript (column or sidecar .srt/.jsonl); add "
                   "transcripts to some clips")
        else:
            why = "no training clip has readable audio (sidecar .wav or ffmpeg)"
        raise DataError(f"{path}: the {m} modality has no frames in the train split: {why}")
