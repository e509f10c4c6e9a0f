"""Capture benchmark: featurizer cost per second of media, and the real-time factor.

    python bench/capture.py --json results/capture.json [--seconds 10] [--model MODEL_DIR]

Per modality it reports seconds of compute per second of media (``cost_per_media_s``; below
1 keeps up on one core): audio at 16 kHz (each audio featurizer, offline and in 50 ms
blocks as a microphone delivers), video at 30 fps 640x480 (MJPG decode of every frame plus
the face featurizer on the 10 Hz it samples, and the featurizer alone per frame), and text
(per utterance). The pipeline figure runs the ``file:`` source, which decodes every video
frame, featurizes audio in chunks and video at 10 Hz, over a test-made 30 fps 640x480 video
with 16 kHz audio and a transcript: ``rtf = wall seconds / media seconds`` (below 1 = keeps up
with real time). With ``--model``, ``hrlf-run --pace fast`` on the same file adds inference.
The live figure paces a camera and a microphone stand-in in real time through the capture
threads and reports events per second, backlog drops, lag and CPU seconds per second.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from hrlf.runtime import featurizers as fz
from hrlf.runtime.capture import testmedia
from hrlf.runtime.capture.audiochain import AudioChain
from hrlf.runtime.capture.vad import DEFAULT_VAD

import capture_real  # bench/capture_real.py: run as a script, bench/ is on sys.path

SR = 16000
FPS = 30.0
SIZE = (640, 480)


def _timed(fn, *a):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*a)
    return out, time.perf_counter() - w0, time.process_time() - c0


def bench_audio(seconds: float) -> dict:
    x = testmedia.tone(seconds, label=1.0)
    out = {}
    for name in ("egemaps-lld-v02", "logmel40-v1"):
        try:
            fz.make_audio(name, SR).offline(x[:SR])  # warm up (library init)
        except fz.BackendUnavailable as e:
            out[name] = {"unavailable": str(e)}
            continue

        def chunked(**kw):
            f, n = fz.make_audio(name, SR, **kw), 0
            for i in range(0, len(x), SR // 20):
                n += len(f.push(x[i:i + SR // 20])[0])
            return n + len(f.flush()[0])

        (_, frames), w_off, c_off = _timed(fz.make_audio(name, SR).offline, x)
        n, w_ch, c_ch = _timed(chunked)
        _, w_live, _ = _timed(lambda: chunked(min_chunk_frames=10))
        out[name] = {"frames_per_media_s": round(n / seconds, 1),
                     "offline_cost_per_media_s": round(w_off / seconds, 4),
                     # 50 ms blocks pushed; recompute at the file default (eGeMAPS: 250 ms)
                     "chunked_cost_per_media_s": round(w_ch / seconds, 4),
                     "chunked_cpu_per_media_s": round(c_ch / seconds, 4),
                     # recompute every 100 ms, as the microphone source does
                     "live_setting_cost_per_media_s": round(w_live / seconds, 4)}
    return out


def bench_vision(seconds: float, folder: str) -> dict:
    import cv2

    path = testmedia.write_video(os.path.join(folder, "v.avi"), seconds, FPS, SIZE, label=1.0)
    frames = list(testmedia.video_frames(1.0, FPS, SIZE, label=1.0))
    out = {"cv2": cv2.__version__, "fps": FPS, "size": list(SIZE)}

    def decode_all():
        cap, n = cv2.VideoCapture(path), 0
        while cap.read()[0]:
            n += 1
        cap.release()
        return n

    n, w, _ = _timed(decode_all)
    out["decode_mjpg_cost_per_media_s"] = round(w / (n / FPS), 4)
    try:
        feat = fz.make_vision()
    except fz.BackendUnavailable as e:
        out["haarface-v1"] = {"unavailable": str(e)}
        return out
    feat(frames[0])
    res, w, c = _timed(lambda: [feat(f) for f in frames])
    per_frame = w / len(frames)
    out["haarface-v1"] = {
        "ms_per_frame": round(1000 * per_frame, 2),
        "faces_found": sum(r is not None for r in res), "frames": len(frames),
        "cost_per_media_s_at_10hz": round(per_frame * fz.HAARFACE.rate_hz, 4),
        "cost_per_media_s_if_every_frame_at_30fps": round(per_frame * FPS, 4)}
    return out


def bench_text(n: int = 200) -> dict:
    f = fz.make_text()
    words = [testmedia.POSITIVE[i % 2] + " and then some more words here" for i in range(n)]
    f(words[0])
    _, w, _ = _timed(lambda: [f(s) for s in words])
    # speech: about one 8-word utterance every 3 s of media
    return {"ms_per_utterance": round(1000 * w / n, 3),
            "cost_per_media_s_at_one_utterance_per_3s": round(w / n / 3.0, 5)}


def bench_pipeline(seconds: float, folder: str, model: str | None) -> dict:
    from hrlf.runtime.sources import open_source

    video = testmedia.write_clip(folder, "pipe", 1.0, seconds=seconds, fps=FPS, size=SIZE)
    src = open_source(f"file:{video}", None)
    counts, drops, wall, cpu = capture_real.drain(src)
    src.close()
    out = {"media_s": seconds, "featurizers": src.featurizers, "events": counts, "drops": drops,
           "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "rtf": round(wall / seconds, 4),
           "keeps_up": wall < seconds}
    if model:
        cmd = [sys.executable, "-m", "hrlf.runtime.cli", model, "--stream", f"file:{video}",
               "--pace", "fast", "--stats-every", "0"]
        w0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - w0
        segs = sum(1 for ln in p.stdout.splitlines() if ln.startswith('{"segment"'))
        out["with_model"] = {"exit": p.returncode, "segments": segs, "wall_s": round(wall, 3),
                             "rtf_including_startup": round(wall / seconds, 4),
                             "error": p.stderr.strip().splitlines()[-1] if p.returncode else None}
    return out


class _PacedCamera:
    """A camera stand-in delivering pre-rendered frames at ``fps`` in real time."""

    def __init__(self, frames, fps):
        self.frames, self.period, self.i, self.next = frames, 1.0 / fps, 0, time.monotonic()

    def read(self):
        self.next += self.period
        time.sleep(max(0.0, self.next - time.monotonic()))
        self.i += 1
        return True, self.frames[self.i % len(self.frames)]

    def release(self):
        pass


class _PacedMic:
    """A microphone stand-in calling back with 50 ms blocks in real time (as mic does)."""

    def __init__(self, callback, x):
        import threading

        self.cb, self.x, self.active = callback, x, True
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        n, nxt = SR // 20, time.monotonic()
        for i in range(0, len(self.x) - n + 1, n):
            nxt += 0.05
            time.sleep(max(0.0, nxt - time.monotonic()))
            if not self.active:
                return
            self.cb(self.x[i:i + n, None], n, None, None)

    def close(self):
        self.active = False


def bench_live(seconds: float) -> dict:
    """Camera (30 fps 640x480) + microphone (16 kHz speech, voice gate and speech recognition
    on) stand-ins paced in real time, through the live capture threads: does featurizing
    keep up (no backlog, events at full rate)?"""
    import threading

    from hrlf.runtime.capture import base, live
    from hrlf.runtime.featurizers.vision import RateGate

    try:
        feat = fz.make_vision()
    except fz.BackendUnavailable as e:
        return {"unavailable": str(e)}
    frames = list(testmedia.video_frames(1.0, FPS, SIZE, label=1.0))
    x = np.resize(capture_real.speech_track(), int((seconds + 1.0) * SR))  # espeak-ng speech
    clock, wake = live.Clock(), threading.Event()
    audio_name = fz.default_names()["audio"]
    tracks = [live.LiveVideoTrack("camera", _PacedCamera(frames, FPS), lambda: None, feat,
                                  RateGate(feat.rate_hz), clock, wake),
              live.MicTrack("mic", lambda cb: _PacedMic(cb, x), AudioChain(
                  fz.make_audio(audio_name, SR, min_chunk_frames=10), SR, vad=DEFAULT_VAD,
                  asr=True, text_featurizer=fz.make_text()), SR, clock, wake, block_s=0.05)]
    src = base.LiveSource("bench", tracks, {}, wake)
    counts, drops, lag = {}, {}, {"audio": [], "vision": []}
    w0, c0 = time.perf_counter(), time.process_time()
    while clock() < seconds:
        r = src.read(0.02)
        now = clock()
        for e in r.events:
            counts[e.modality] = counts.get(e.modality, 0) + 1
            lag.setdefault(e.modality, []).append(now - e.t)
        for d in r.drops:
            drops[d.reason] = drops.get(d.reason, 0) + d.count
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    st = src.stats()
    src.close()
    return {"seconds": seconds, "audio_featurizer": audio_name,
            "events_per_s": {m: round(n / wall, 1) for m, n in counts.items()}, "drops": drops,
            "captured_video_frames": st["tracks"]["vision"]["captured"],
            "lag_ms_p50": {m: round(1000 * float(np.percentile(v, 50)), 1)
                           for m, v in lag.items() if v},
            "lag_ms_p99": {m: round(1000 * float(np.percentile(v, 99)), 1)
                           for m, v in lag.items() if v},
            "source_latency_s": round(src.latency_s, 3),
            "cpu_s_per_s": round(cpu / wall, 3),
            "keeps_up": not drops.get("backlog") and counts.get("vision", 0) >= 0.9 * 10 * wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", dest="json_out", help="write the results here")
    ap.add_argument("--seconds", type=float, default=10.0, help="media seconds per test")
    ap.add_argument("--model", help="MODEL_DIR for the end-to-end hrlf-run figure")
    ap.add_argument("--pipeline-seconds", type=float, default=60.0,
                    help="length of the real-media file: pipeline clip")
    ap.add_argument("--only-real", action="store_true",
                    help="only the real-media parts (faces, speech, file: pipeline)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        res = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "numpy": np.__version__}}
        if not args.only_real:
            res.update({
                "audio_16khz": bench_audio(args.seconds),
                "video_30fps_640x480": bench_vision(min(args.seconds, 5.0), tmp),
                "text": bench_text(),
                "pipeline_file_30fps_640x480_16khz": bench_pipeline(args.seconds, tmp,
                                                                    args.model),
                "live_30fps_640x480_16khz_paced": bench_live(min(args.seconds, 10.0))})
        res.update({"faces_on_photographs_640x480_one_core": capture_real.bench_faces(),
                    "speech_recognition": capture_real.bench_asr(),
                    "pipeline_file_h264_aac_speech_no_transcript":
                        capture_real.bench_file_pipeline(args.pipeline_seconds, tmp)})
        if args.json_out and args.only_real and os.path.isfile(args.json_out):
            with open(args.json_out) as f:  # keep the other parts of an earlier full run
                res = {**json.load(f), **res}
    text = json.dumps(res, indent=1)
    print(text)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
