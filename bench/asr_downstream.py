"""Downstream part of ``bench/asr.py --downstream``: does sentiment follow recognized words?

Two models are trained as a user would (``hrlf-train --data clips.csv``, then
``hrlf-export``) on the 26-clip real-media set
(:func:`hrlf.runtime.capture.realmedia.build_clip_set`): one on its typed ``.srt``
transcripts, one with the transcripts removed, so its text is recognized at training time
(Whisper, ``auto``) as it will be at run time. Then each of 45 unseen spoken sentences (15 sentences none of the
clips say, x 3 espeak-ng voices; :data:`hrlf.runtime.capture.speechsets.UNSEEN`) is scored
as an audio file through the ``file:`` source and the ``Session`` API, its text from: the
true transcript (a sidecar ``.srt``), Whisper, PocketSphinx, and both recognizers on the
8 kHz telephone copy (mu-law WAV). Reported: sentences whose mean score has the right sign.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

BIN = os.path.dirname(sys.executable)


def _tool(name: str) -> str:
    return os.path.join(BIN, name) if os.path.exists(os.path.join(BIN, name)) else name


def train_model(folder: str, seed: int = 11, recognized: bool = False) -> str:
    """``recognized``: the clips' .srt transcripts are removed first, so training
    transcribes them with the recognizer ``hrlf-run`` will use (parity)."""
    import glob

    from hrlf.runtime.capture import realmedia

    csv = realmedia.build_clip_set(os.path.join(folder, "clips"), 26, seed=seed)
    if recognized:
        for p in glob.glob(os.path.join(folder, "clips", "media", "*.srt")):
            os.remove(p)
    run, model = os.path.join(folder, "run"), os.path.join(folder, "model")
    for cmd in ([_tool("hrlf-train"), "--data", csv, "--out", run, "--quiet"],
                [_tool("hrlf-export"), run, "--out", model]):
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return model


def write_sentences(folder: str) -> list[dict]:
    """One audio file per unseen sentence and voice: 16 kHz WAV with a true-text sidecar
    (in ``true/``), the same without (``asr/``), the telephone copy (``tel/``, mu-law)."""
    import soundfile

    from hrlf.runtime.capture import speechsets as S
    from hrlf.runtime.capture import testmedia

    out = []
    for k, (text, x) in enumerate(S.espeak()):
        sign = dict(S.UNSEEN)[text]
        lead = np.zeros(int(0.5 * S.RATE), np.float32)
        x = np.concatenate([lead, x, lead])
        paths = {}
        for sub in ("true", "asr", "tel"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
            paths[sub] = os.path.join(folder, sub, f"u{k:02d}.wav")
        soundfile.write(paths["true"], x, S.RATE, subtype="PCM_16")
        testmedia.write_srt(paths["true"][:-4] + ".srt", [(0.5, len(x) / S.RATE - 0.5, text)])
        soundfile.write(paths["asr"], x, S.RATE, subtype="PCM_16")
        soundfile.write(paths["tel"], S.telephone(x), 8000, subtype="ULAW")
        out.append({"text": text, "sign": sign, **paths})
    return out


def clip_score(model_dir: str, path: str, asr: str) -> float | None:
    """Mean score of a file's windows (None when no window was scored)."""
    from hrlf.runtime.runner import Runner
    from hrlf.runtime.session import Session, SessionConfig
    from hrlf.runtime.sources import open_source
    from hrlf.runtime.spec import ModelSpec

    import io
    import json

    spec = ModelSpec.load(model_dir)
    src = open_source(f"file:{path}", spec, asr=asr)
    session = Session.load(model_dir, config=SessionConfig(live=False))
    lines: list[str] = []
    Runner(src, session, write=lines.append, stats_every_s=0, log=io.StringIO()).run()
    scores = [json.loads(ln)["score"] for ln in lines]
    scores = [s for s in scores if s is not None]
    return float(np.mean(scores)) if scores else None


def run(folder: str) -> dict:
    """Both models: trained on typed transcripts, and on the clips' recognized speech."""
    items = write_sentences(os.path.join(folder, "unseen"))
    out = {}
    for name, recognized in (("typed_transcripts", False), ("recognized_whisper", True)):
        sub = os.path.join(folder, name)
        out[name] = score_all(train_model(sub, recognized=recognized), items)
    return out


def score_all(model: str, items: list[dict]) -> dict:
    ways = {"true_text": ("true", "off"), "whisper": ("asr", "whisper"),
            "pocketsphinx": ("asr", "pocketsphinx"), "whisper_8k_ulaw": ("tel", "whisper"),
            "pocketsphinx_8k_ulaw": ("tel", "pocketsphinx")}
    out = {"sentences": len(items), "model": "26 real-media clips (seed 11)"}
    for way, (sub, asr) in ways.items():
        right = 0
        for it in items:
            s = clip_score(model, it[sub], asr)
            right += s is not None and np.sign(s) == it["sign"]
        out[way] = {"sign_right": int(right)}
    return out
