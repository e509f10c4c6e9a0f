"""Transcripts: ``.srt`` subtitles or ``.jsonl`` lines -> timed utterances (cues).

JSON lines: one object per line with ``text`` and ``start``/``end`` in seconds (``start_s``/
``end_s`` also accepted; a line with only ``t`` lasts one text frame). A transcript next to a
media file (same stem, ``.srt`` or ``.jsonl``) is its *sidecar* and is picked up by
``file:PATH`` sources and by ``hrlf-train --data clips.csv``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from ...errors import InputError

TRANSCRIPT_EXTS = (".srt", ".jsonl")
_SRT_TIME = re.compile(r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})")


@dataclass(frozen=True)
class Cue:
    """One utterance: ``text`` spoken over ``[start_s, end_s)``."""

    start_s: float
    end_s: float
    text: str


def _srt_seconds(s: str) -> float:
    m = _SRT_TIME.fullmatch(s.strip())
    if not m:
        raise ValueError(f"bad time '{s.strip()}'")
    h, mi, se, ms = m.groups()
    return int(h) * 3600 + int(mi) * 60 + int(se) + int(ms.ljust(3, "0")) / 1000.0


def parse_srt(text: str, source: str = "<srt>") -> list[Cue]:
    """Cues of SubRip text.

    Raises:
        InputError: a timing line that cannot be read (names ``source`` and the line).
    """
    cues, lines = [], text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        if "-->" not in lines[i]:
            i += 1
            continue
        a, _, b = lines[i].partition("-->")
        try:
            start, end = _srt_seconds(a), _srt_seconds(b.split()[0] if b.split() else b)
        except ValueError as e:
            raise InputError(f"{source}:{i + 1}: {e}; use HH:MM:SS,mmm --> HH:MM:SS,mmm") from None
        body = []
        i += 1
        while i < len(lines) and lines[i].strip():
            body.append(lines[i].strip())
            i += 1
        words = " ".join(body).strip()
        if words:
            cues.append(Cue(start, max(end, start), words))
    return sorted(cues, key=lambda c: c.start_s)


def parse_jsonl(text: str, source: str = "<jsonl>") -> list[Cue]:
    """Cues of JSON lines (see module docstring).

    Raises:
        InputError: a line that is not an object with ``text`` and a start time.
    """
    cues = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            words = str(d["text"])
            start = float(d.get("start", d.get("start_s", d.get("t"))))
            end = float(d.get("end", d.get("end_s", start)))
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{source}:{n}: not a transcript line ({type(e).__name__}: {e}); "
                             'write {"text": ..., "start": s, "end": s}') from None
        if words.strip():
            cues.append(Cue(start, max(end, start), words.strip()))
    return sorted(cues, key=lambda c: c.start_s)


def read_transcript(path: str) -> list[Cue]:
    """Cues of a ``.srt`` or ``.jsonl`` file.

    Raises:
        InputError: missing file, unknown extension or a malformed line.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in TRANSCRIPT_EXTS:
        raise InputError(f"{path}: transcript must be .srt or .jsonl; convert it")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read transcript ({e.strerror}); check the path") from None
    return parse_srt(text, path) if ext == ".srt" else parse_jsonl(text, path)


def sidecar_transcript(media_path: str) -> str | None:
    """``<stem>.srt`` or ``<stem>.jsonl`` next to ``media_path``, if one exists."""
    stem = os.path.splitext(media_path)[0]
    for ext in TRANSCRIPT_EXTS:
        if os.path.isfile(stem + ext):
            return stem + ext
    return None
