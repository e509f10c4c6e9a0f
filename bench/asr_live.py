"""Live part of ``bench/asr.py``: a microphone simulated in real time, measured against the
true speech it plays.

The stream is espeak-ng reading six passages of two sentences (4-6 s each, 1.9 s apart; a
sentence ends in a 0.4 s pause), fed in 50 ms blocks paced by the clock through
``AudioChain`` with the recognizer on its worker threads, as ``mic`` runs it. The truth is
the audio itself: speech is where 10 ms frames are above -50 dBFS, pauses under 0.3 s
(between words, at commas) bridged. Measured per run:

* ``after_end_s``: for each end of speech followed by a pause of 0.3 s or more (12 a run),
  the wall time until every text frame before that moment was out (the text of everything
  said so far), p50/p95;
* ``update_gap_s``: in passages of 3 s or more of speech, the seconds of speech between
  consecutive text updates (pauses do not count), p50/p95/max;
* ``frame_delay_s``: each text frame's emission time minus its time stamp (what the grace
  must cover), p50/p95/max;
* ``runtime``: the source's own ``text_latency`` stats (its speech ends are the VAD's);
* ``wer``: the words heard (the transcript) against the passages; ``cpu_per_audio_s``.
"""
from __future__ import annotations

import time

import numpy as np

PAUSE_S = 0.3
RATE = 16000


def stream() -> tuple[np.ndarray, str]:
    """The played audio and its words."""
    from hrlf.runtime.capture import realmedia
    from hrlf.runtime.capture import speechsets as S

    passages = [" ".join(s for s, _ in S.UNSEEN[i:i + 2]) for i in range(0, 12, 2)]
    gap = np.zeros(int(1.5 * RATE), np.float32)
    parts = [gap]
    for p in passages:
        parts += [realmedia.speak(p, voice="en-us", speed_wpm=150), gap]
    return np.concatenate(parts), " ".join(passages)


def truth(x: np.ndarray, rate: int = RATE, floor_db: float = -50.0) -> list[list]:
    """Speech spans ``[[start, end], ...]`` of ``x`` (pauses under :data:`PAUSE_S`
    bridged)."""
    n = rate // 100
    frames = x[:len(x) // n * n].reshape(-1, n).astype(np.float64)
    on = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12) > floor_db
    spans: list[list] = []
    for i in np.flatnonzero(on):
        t = i / 100.0
        if spans and t - spans[-1][1] < PAUSE_S:
            spans[-1][1] = t + 0.01
        else:
            spans.append([t, t + 0.01])
    return spans


def passages(spans, hangover_s: float = 1.2) -> list[list]:
    """Spans grouped into utterances (gaps under ``hangover_s``)."""
    out: list[list] = []
    for s in spans:
        if out and s[0] - out[-1][-1][1] < hangover_s:
            out[-1].append(s)
        else:
            out.append([s])
    return out


def run_once(engine, x: np.ndarray, ref: str, block_s: float = 0.05) -> dict:
    """Feed ``x`` in real time like a microphone; the figures of the module doc."""
    from hrlf.runtime import featurizers as fz
    from hrlf.runtime.capture import speechsets as S
    from hrlf.runtime.capture import vad
    from hrlf.runtime.capture.asr_timing import GAP_MIN_SPEECH_S, quantiles, speech_gaps
    from hrlf.runtime.capture.audiochain import AudioChain
    from hrlf.runtime.capture.heard import Heard
    from hrlf.runtime.capture.live import Clock

    clock, heard = Clock(), Heard(keep_text=True)
    ch = AudioChain(fz.make_audio("logmel40-v1", RATE, min_chunk_frames=10), RATE,
                    vad=vad.DEFAULT_VAD, asr=engine, text_featurizer=fz.make_text(),
                    live=True, clock=clock, heard=heard)
    shown: list[tuple[float, float]] = []  # (clock, t) of each text frame
    n = int(block_s * RATE)
    c0 = time.process_time()
    for k, i in enumerate(range(0, len(x), n)):
        while clock() < (k + 1) * block_s:  # the block is complete at its end
            time.sleep(0.005)
        events, _ = ch.push(x[i:i + n])
        now = clock()
        shown += [(now, e.t) for e in events if e.modality == "text"]
    cpu = time.process_time() - c0
    ch.flush()
    st, updates = ch.stats(), list(ch.asr.timing.updates)
    ch.close()
    spans = truth(x)
    lat = []
    for _, e in spans:  # each is followed by a pause of PAUSE_S or more
        done = [c for c, until in updates if until >= e - 1e-6]
        if done:
            lat.append(min(done) - e)
    seen = sorted({c for c, _ in shown})
    gaps = []
    for utt in passages(spans):
        if sum(b - a for a, b in utt) >= GAP_MIN_SPEECH_S:
            gaps += speech_gaps(seen, utt)
    hyp = " ".join(u["text"] for u in heard.transcript()["utterances"])
    err, words = S.wer(ref, hyp)
    return {"after_end_s": {**quantiles(lat), "n": len(lat)},
            "update_gap_s": {**quantiles(gaps, ("p50", "p95", "max")), "n": len(gaps)},
            "frame_delay_s": {**quantiles([c - t for c, t in shown], ("p50", "p95", "max")),
                              "n": len(shown)},
            "runtime": st.get("text_latency", {}), "wer": round(err / words, 4),
            "cpu_per_audio_s": round(cpu / (len(x) / RATE), 4), "words": st["words"],
            "utterances": st["utterances"], "hypothesis": hyp}


def bench(engines: dict, runs: int) -> dict:
    """``engines``: ``{name: factory}`` of live engines; medians of ``runs`` runs each."""
    x, ref = stream()
    out = {"stream_s": round(len(x) / RATE, 1), "runs": runs}
    for name, make in engines.items():
        res = [run_once(make(), x, ref) for _ in range(runs)]
        med: dict = {}
        for key in ("after_end_s", "update_gap_s", "frame_delay_s"):
            for q in ("p50", "p95", "max"):
                vals = [r[key][q] for r in res if q in r[key]]
                if vals:
                    med.setdefault(key, {})[q] = round(float(np.median(vals)), 3)
        for key in ("wer", "cpu_per_audio_s"):
            med[key] = round(float(np.median([r[key] for r in res])), 4)
        out[name] = {"median_of_runs": med, "runs_raw": res}
    return out
