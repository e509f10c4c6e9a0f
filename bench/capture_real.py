"""Real-media parts of the capture benchmark (imported by bench/capture.py).

* Face featurizers on photographs: scikit-image's face photographs moving and zooming over
  its other photographs at 640x480 (:mod:`hrlf.runtime.capture.realmedia`), one core.
* Speech recognition: PocketSphinx's real-time factor and word error rate on espeak-ng
  speech of known sentences.
* ``file:`` pipeline: an H.264 + AAC ``.mp4`` (written here with PyAV) of those photographs
  and that speech, no transcript, read through the ``file:`` source with all three
  modalities (faces, eGeMAPS with the voice gate, speech recognition into text).
"""
from __future__ import annotations

import os
import time

import numpy as np

from hrlf.runtime import featurizers as fz

SENTENCES = ("I love this movie, it is wonderful.", "The acting was terrible and the plot "
             "was boring.", "What a beautiful day, everything went perfectly.",
             "This is the worst service I have ever had.", "I am very happy with the result.",
             "The food was cold and the staff were rude.")


def _frames(seconds: float, fps: float, size=(640, 480), seed: int = 0):
    from hrlf.runtime.capture import realmedia

    rng = np.random.default_rng(seed)
    faces = realmedia.face_photos()
    per = 4.0  # a new face and background every 4 s
    for k in range(int(np.ceil(seconds / per))):
        bg = realmedia.background(realmedia.BACKGROUNDS[k % 6], rng, size=size)
        face = faces[(k * 7) % len(faces)]
        n = min(per, seconds - k * per)
        yield from realmedia.video_frames(face, bg, n, rng, fps=fps)


def bench_faces(n_frames: int = 150) -> dict:
    import cv2

    cv2.setNumThreads(1)  # one core
    frames = list(_frames(n_frames / 10.0, 10.0))
    out = {"frames": len(frames), "size": [640, 480], "source": "scikit-image photographs "
           "(astronaut, LFW faces x5) over its photographs, moving and zooming, 10 fps"}
    for name in ("haarface-v1", "haarface-v2"):
        try:
            f = fz.make_vision(name)
        except fz.BackendUnavailable as e:
            out[name] = {"unavailable": str(e)}
            continue
        f(frames[0])
        if hasattr(f, "reset"):
            f.reset()
        c0, w0 = time.process_time(), time.perf_counter()
        found = sum(f(x) is not None for x in frames)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        out[name] = {"cpu_ms_per_frame": round(1000 * cpu / len(frames), 2),
                     "wall_ms_per_frame": round(1000 * wall / len(frames), 2),
                     "faces_found": found}
    return out


def _speech(text: str, voice: str = "en-us"):
    from hrlf.runtime.capture import realmedia

    return realmedia.speak(text, voice=voice, speed_wpm=140)


def wer(ref: list[str], hyp: list[str]) -> float:
    """Word error rate (Levenshtein over words / reference length)."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))


def bench_asr() -> dict:
    import re

    from hrlf.runtime.capture import asr_pocketsphinx as asr

    if asr.unavailable_reason():
        return {"unavailable": asr.unavailable_reason()}
    dec = asr.make_decoder()
    errors = words = 0
    media = cpu = 0.0
    for voice in ("en-us", "en-us+m3", "en-us+f3"):
        for s in SENTENCES:
            x = _speech(s, voice)
            pcm = np.frombuffer(asr.to_pcm16(x), np.int16)
            c0 = time.process_time()
            dec.start_utt()
            for i in range(0, len(pcm), 480):
                dec.process_raw(pcm[i:i + 480].tobytes(), False, False)
            dec.end_utt()
            cpu += time.process_time() - c0
            media += len(pcm) / 16000
            hyp = [w.word for w in asr.seg_words(dec, 0.0)]
            ref = re.findall(r"[a-z']+", s.lower())
            errors += round(wer(ref, hyp) * len(ref))
            words += len(ref)
    return {"recognizer": f"{asr.NAME} {asr.MODEL}", "options": asr.DECODER_OPTS,
            "speech": "espeak-ng en-us, en-us+m3, en-us+f3 at 140 wpm, 6 sentences each",
            "words": words, "wer": round(errors / words, 3), "media_s": round(media, 2),
            "cpu_rtf": round(cpu / media, 4)}


def speech_track() -> np.ndarray:
    """The sentences spoken one after another, 0.5 s apart (16 kHz float32)."""
    return np.concatenate([np.concatenate([_speech(s), np.zeros(8000, np.float32)])
                           for s in SENTENCES])


def write_av_clip(path: str, seconds: float, fps: float = 30.0) -> str:
    """An .mp4: H.264 640x480 video of the photographs, AAC speech (the sentences)."""
    import av

    speech = speech_track()
    n = int(seconds * 16000)
    audio = np.resize(speech, n).astype(np.float32)
    with av.open(path, "w") as c:
        vs = c.add_stream("libx264", rate=int(fps))
        vs.width, vs.height, vs.pix_fmt = 640, 480, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "23"}
        aus = c.add_stream("aac", rate=16000)
        aus.layout = "mono"
        for img in _frames(seconds, fps):
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        for i in range(0, n, 1024):
            fr = av.AudioFrame.from_ndarray(audio[None, i:i + 1024], format="flt", layout="mono")
            fr.sample_rate = 16000
            for p in aus.encode(fr):
                c.mux(p)
        for p in aus.encode():
            c.mux(p)
    return path


def drain(src) -> tuple[dict, dict, float, float]:
    """Read a file source to its end: events and drops per kind, wall and CPU seconds."""
    from hrlf.runtime.sources import Status

    counts, drops = {}, {}
    w0, c0 = time.perf_counter(), time.process_time()
    while True:
        r = src.read(0.0)
        for e in r.events:
            counts[e.modality] = counts.get(e.modality, 0) + 1
        for d in r.drops:
            drops[d.reason] = drops.get(d.reason, 0) + d.count
        if r.status == Status.EOS:
            break
    return counts, drops, time.perf_counter() - w0, time.process_time() - c0


def bench_file_pipeline(seconds: float, folder: str, asr: str = "auto") -> dict:
    from hrlf.runtime.sources import open_source

    path = os.path.join(folder, "talk.mp4")
    if not os.path.isfile(path):
        write_av_clip(path, seconds)
    load = os.getloadavg()
    src = open_source(f"file:{path}", None, asr=asr)
    counts, drops, wall, cpu = drain(src)
    st = src.stats()
    worker = sum(getattr(tr, "worker_cpu_s", 0.0) for tr in src.tracks)
    src.close()
    return {"media": "H.264 640x480 30 fps + AAC 16 kHz .mp4, photographs + espeak-ng speech, "
                     "no transcript", "media_s": seconds, "featurizers": src.featurizers,
            "events": counts, "drops": drops, "words_recognized": st["tracks"]["audio"].get(
                "words"), "asr": st.get("asr"), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "rtf": round(wall / seconds, 4), "cpu_per_media_s": round(cpu / seconds, 4),
            # audio worker thread vs the rest (video decode threads, faces, the reader): on
            # two idle cores the wall time is bounded below by the larger share
            "audio_thread_cpu_per_media_s": round(worker / seconds, 4),
            "other_cpu_per_media_s": round((cpu - worker) / seconds, 4),
            "load_avg_1m_before": round(load[0], 2), "cpus": os.cpu_count()}
