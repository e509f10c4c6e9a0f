"""Source factories registered in :mod:`hrlf.runtime.sources`: camera, microphone, file, RTSP.

* ``camera0`` / ``cameraN``: OpenCV ``VideoCapture(N)``, plus the default microphone when
  one can be opened (``audio=False`` turns that off, ``audio=True`` requires it).
* ``mic`` / ``mic:N``: sounddevice input stream (default device, or device N).
* ``file:PATH``: a video (frames through OpenCV, audio from a sidecar ``.wav`` or ffmpeg),
  or an audio file; text from a sidecar ``.srt``/``.jsonl`` (or ``transcript=PATH``).
* ``rtsp://...``: OpenCV's FFmpeg backend.

Every factory raises :class:`InputError` with one line when the source cannot start
(no device, missing file, missing library); afterwards, trouble is counted, never raised.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading

from .. import featurizers as fz
from . import avmedia, base, live, media, native
from . import vad as vad_mod
from .health import Health
from .speech import SourceSpeech, speech_chain
from .transcripts import read_transcript, sidecar_transcript
from ...errors import BackendUnavailable, HrlfError, InputError

log = logging.getLogger("hrlf.capture")
MIC_RATE = 16000
MIC_BLOCK_S = 0.05
#: file audio is processed a second at a time (eGeMAPS recomputes 1 s of context per chunk)
FILE_CHUNK_S = 1.0
FILE_CHUNK_FRAMES = 100
#: a live source that delivers nothing for this long is lost (``--stall-s``)
STALL_S = 2.0
#: live audio recomputes every 100 ms (files: 250 ms) to keep frames within ~0.25 s of now
LIVE_AUDIO_CHUNK_FRAMES = 10


@contextlib.contextmanager
def _quiet(cv2):
    """Silence OpenCV's own WARN lines while probing devices (we print one line instead)."""
    lg = getattr(getattr(cv2, "utils", None), "logging", None)
    if lg is None:
        yield
        return
    old = lg.getLogLevel()
    lg.setLogLevel(lg.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        lg.setLogLevel(old)


def _cv2(uri: str):
    try:
        return _import_vision().import_cv2()
    except BackendUnavailable as e:
        raise InputError(f"{uri}: {e}") from None


def _import_vision():
    from ..featurizers import vision

    return vision


def camera_index(uri: str) -> int:
    """``camera`` / ``camera0`` -> 0, ``camera2`` -> 2."""
    digits = uri[len("camera"):]
    if digits and not digits.isdigit():
        raise InputError(f"{uri}: not a camera name; use camera0, camera1, ...")
    return int(digits or 0)


def open_camera(uri: str, spec=None, audio: bool | None = None, mic: int | None = None,
                backoff_s=live.BACKOFF_S, asr="auto", stall_s: float = STALL_S, **opts):
    """Open camera N (and the microphone where one exists) as a live source.

    Raises:
        InputError: no such video device, OpenCV missing, or no usable face featurizer.
    """
    native.configure(bool(opts.get("verbose")))
    idx = camera_index(uri)
    if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{idx}"):
        raise InputError(f"{uri}: no video device found (/dev/video{idx} does not exist); "
                         "connect a camera, or use --stream file:PATH or demo")
    cv2 = _cv2(uri)
    reopen = _opener(cv2, idx)
    cap = reopen()
    if cap is None:
        raise InputError(f"{uri}: no video device found (OpenCV cannot open camera index {idx}); "
                         "connect a camera, or use --stream file:PATH or demo")
    return _live_video(uri, _LiveOpts(spec, backoff_s, _speech(uri, spec, asr, opts), stall_s),
                       cap, reopen, audio, mic)


def _speech(uri: str, spec, asr, opts: dict) -> SourceSpeech:
    """The source's recognition settings (``asr_model`` and ``words`` from ``opts``)."""
    return SourceSpeech(asr, opts.get("asr_model"), spec, bool(opts.get("words")), uri)


class _LiveOpts:
    """What every live track of one source shares: featurizer names, gate, speech, stall."""

    def __init__(self, spec, backoff_s, speech: SourceSpeech, stall_s):
        self.names, self.backoff_s = fz.default_names(spec), backoff_s
        self.vad = _vad_of(speech.uri, spec)
        self.speech, self.stall_s = speech, float(stall_s)
        self.clock, self.wake, self.health = live.Clock(), threading.Event(), Health()


def _opener(cv2, *args):
    """A function that opens ``cv2.VideoCapture(*args)``: the capture, or None (and
    released) when it cannot be opened; used at start and for every reconnect."""
    def reopen():
        with _quiet(cv2):
            cap = cv2.VideoCapture(*args)
        if cap.isOpened():
            return cap
        cap.release()
        return None
    return reopen


def _live_video(uri, o: _LiveOpts, cap, reopen, audio, mic):
    try:
        feat = fz.make_vision(o.names["vision"])
    except BackendUnavailable as e:
        cap.release()
        raise InputError(f"{uri}: {e}") from None
    tracks = [live.LiveVideoTrack(uri, cap, reopen, feat, _import_vision().RateGate(feat.rate_hz),
                                  o.clock, o.wake, backoff_s=o.backoff_s, stall_s=o.stall_s,
                                  health=o.health)]
    notes = {}
    if audio is not False:
        try:
            tracks.append(_mic_track("mic" if mic is None else f"mic:{mic}", mic, o))
        except InputError as e:
            if audio:
                tracks[0].close()
                raise
            notes["audio"] = notes["text"] = str(e)
            log.warning("%s: running without audio (%s)", uri, e)
    return _live_source(uri, tracks, o, notes)


def _live_source(uri, tracks, o: _LiveOpts, notes):
    feats = {tr.modality: o.names[tr.modality] for tr in tracks}
    if "audio" in feats and o.speech.on:
        feats["text"] = o.names["text"]
    elif "audio" in feats:
        notes["text"] = o.speech.choice().why
    src = base.LiveSource(uri, tracks, feats, o.wake, notes, health=o.health, speech=o.speech)
    if "vision" not in feats:
        o.health.set_standing("vision", "unavailable", "a microphone has no video")
    if "audio" in feats and not o.speech.on:
        o.health.set_standing("text", "no_transcript", notes["text"])
    return src


def open_mic(uri: str, spec=None, backoff_s=live.BACKOFF_S, asr="auto",
             stall_s: float = STALL_S, **opts):
    """Open the default microphone (``mic``) or input device N (``mic:N``) as a live source.

    Raises:
        InputError: no PortAudio/sounddevice, or no such input device.
    """
    native.configure(bool(opts.get("verbose")))
    _, _, dev = uri.partition(":")
    if dev and not dev.isdigit():
        raise InputError(f"{uri}: not a microphone name; use mic or mic:N (N = device index)")
    o = _LiveOpts(spec, backoff_s, _speech(uri, spec, asr, opts), stall_s)
    track = _mic_track(uri, int(dev) if dev else None, o)
    return _live_source(uri, [track], o, {})


def import_sounddevice(uri: str = "mic"):
    """Import sounddevice, or raise InputError: "no microphone support (...)" in one line."""
    try:
        import sounddevice
    except ImportError as e:  # a runtime-only install: the capture extra is missing
        raise InputError(f"{uri}: no microphone support ({e}); pip install "
                         "'hrlf[capture]'") from None
    except OSError as e:  # sounddevice is there, the PortAudio library is not
        raise InputError(f"{uri}: no microphone support ({e}); install the PortAudio library "
                         "(apt-get install libportaudio2)") from None
    return sounddevice


def _mic_track(name, device, o: _LiveOpts):
    sd = import_sounddevice(name)
    try:
        info = sd.query_devices(device, "input")
    except Exception as e:  # sounddevice raises ValueError/PortAudioError for a missing device
        raise InputError(f"{name}: no microphone found ({e}); connect one or pick mic:N from "
                         "python -m sounddevice") from None
    rate = MIC_RATE
    try:
        sd.check_input_settings(device=device, samplerate=MIC_RATE, channels=1)
    except Exception:  # the device cannot do 16 kHz: use its own rate (featurizers take any)
        rate = int(info.get("default_samplerate", MIC_RATE))
    try:
        chain = speech_chain(fz.make_audio(o.names["audio"], rate,
                                           min_chunk_frames=LIVE_AUDIO_CHUNK_FRAMES), rate,
                             o.vad, o.speech, o.names, o.health, live=True, clock=o.clock)
    except BackendUnavailable as e:
        raise InputError(f"{name}: {e}") from None

    def open_stream(callback):
        stream = sd.InputStream(samplerate=rate, device=device, channels=1, dtype="float32",
                                blocksize=int(rate * MIC_BLOCK_S), callback=callback)
        stream.start()
        return stream

    try:
        return live.MicTrack(name, open_stream, chain, rate, o.clock, o.wake,
                             block_s=MIC_BLOCK_S, stall_s=o.stall_s, backoff_s=o.backoff_s,
                             health=o.health)
    except Exception as e:  # PortAudio errors on open are device-specific
        raise InputError(f"{name}: cannot open the microphone ({e}); check the device") from None


def open_rtsp(uri: str, spec=None, asr="auto", stall_s: float = STALL_S,
              backoff_s=live.BACKOFF_S, **opts):
    """Open an RTSP stream (video and, where it has one, audio) through PyAV as a live
    source; see :mod:`hrlf.runtime.capture.rtsp`.

    Raises:
        InputError: the stream cannot be opened, or PyAV/OpenCV is missing.
    """
    native.configure(bool(opts.get("verbose")))
    from .rtsp import open_rtsp_av

    return open_rtsp_av(uri, fz.default_names(spec), _vad_of(uri, spec),
                        _speech(uri, spec, asr, opts), float(stall_s), backoff_s, Health())


def open_file(uri: str, spec=None, transcript: str | None = None, step_s: float = 0.5,
              duration_s: float | None = None, asr="auto", **opts):
    """Open a recording (video with its audio, or audio) as a non-live source;
    ``file:PATH#channel=N`` reads channel N (0 = first) of a multi-channel recording
    instead of their mix (e.g. agent and customer of a stereo call).

    Raises:
        InputError: missing file, nothing in it can be read, no such channel, or a library
            the model's voice-activity setting needs is missing.
    """
    native.configure(bool(opts.get("verbose")))
    path, channel = media.split_channel(
        os.path.expanduser(uri.split(":", 1)[1] if uri.startswith("file:") else uri))
    if not path:
        raise InputError(f"{uri}: no file given; use file:PATH")
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file; give file:PATH of a video or audio file")
    health, speech = Health(), _speech(uri, spec, asr, opts)
    tracks, feats, notes, drops = file_tracks(path, fz.default_names(spec), transcript,
                                              vad=_vad_of(uri, spec), asr=speech, health=health,
                                              channel=channel)
    if not tracks:
        raise InputError(f"{path}: nothing to read ({'; '.join(notes.values())})")
    return base.FileSource(uri, tracks, feats, notes, drops, step_s=step_s,
                           duration_s=duration_s, health=health, speech=speech)


def _vad_of(uri: str, spec):
    try:
        return vad_mod.setting_of(spec)
    except HrlfError as e:
        raise InputError(f"{uri}: {e}") from None


def file_tracks(path: str, names: dict, transcript=None, vad=vad_mod.DEFAULT_VAD,
                asr="auto", health: Health | None = None, channel: int | None = None):
    """The tracks of a media file, plus why each missing modality is absent.

    Args:
        path: video or audio file.
        names: modality -> featurizer name.
        transcript: a ``.srt``/``.jsonl`` path, a list of cues (text comes from elsewhere
            when empty), or None for the sidecar.
        vad: the voice-activity gate for audio frames (None: keep every frame).
        asr: how to recognize speech into text where there is no transcript: a
            :class:`~hrlf.runtime.capture.speech.SourceSpeech`, or an ``--asr`` value.
        health: where absence reasons go.
        channel: read this channel of the audio (None: the mix of all).

    Returns:
        ``(tracks, featurizers, notes, startup_drops)``.
    """
    health = health if health is not None else Health()
    tracks, notes, drops = [], {}, []
    if os.path.splitext(path)[1].lower() not in media.AUDIO_EXTS:
        tr, why = _video_track(path, names["vision"])
        if tr is not None:
            tracks.append(tr)
        else:
            notes["vision"] = why
    cues = _cues(path, transcript)
    speech = _file_speech(asr, path, transcript is not None or bool(cues))
    samples, rate, how = media.load_audio(path, channel)
    asr = False
    if samples is None:
        notes["audio"] = how
    else:
        try:
            # files: recompute every second of audio (eGeMAPS keeps 1 s of context), on a
            # worker thread while the video is decoded
            feat = fz.make_audio(names["audio"], rate, min_chunk_frames=FILE_CHUNK_FRAMES)
            chain = speech_chain(feat, rate, vad, speech, names, health)
            asr = chain.asr is not None
            tracks.append(media.AudioArrayTrack(samples, rate, chain, chunk_s=FILE_CHUNK_S,
                                                threaded=True))
        except BackendUnavailable as e:
            notes["audio"] = str(e)
    if cues:
        tracks.append(media.TextCueTrack(cues, fz.make_text(names["text"])))
    elif not asr:
        notes["text"] = f"no transcript (no sidecar .srt/.jsonl) and {speech.choice().why}" \
            if samples is not None or transcript is not None else \
            "no transcript (no sidecar .srt/.jsonl) and no audio to recognize"
    for m, why in notes.items():
        health.set_standing(m, "no_transcript" if m == "text" else "unavailable", why)
        if m != "text":
            log.warning("%s: no %s: %s", path, m, why)
            drops.append(base.note_drop(m, "modality_unavailable", why))
    if os.path.splitext(path)[1].lower() in media.AUDIO_EXTS:
        health.set_standing("vision", "unavailable", "an audio file has no video")
    for tr in tracks:
        tr.health = health
    feats = {tr.modality: names[tr.modality] for tr in tracks}
    if asr and samples is not None and "audio" in feats:
        feats["text"] = names["text"]
    return tracks, feats, notes, drops


def _file_speech(asr, path: str, has_transcript: bool) -> SourceSpeech:
    speech = asr if isinstance(asr, SourceSpeech) else SourceSpeech(asr, uri=path)
    if has_transcript:  # a transcript's text wins over recognized text
        speech.off("the text comes from the transcript")
    return speech


def _video_track(path: str, feat_name: str):
    """A PyAV video track of ``path``, or ``(None, why)``."""
    try:
        feat = fz.make_vision(feat_name)
        container = avmedia.open_input(path)
    except BackendUnavailable as e:
        return None, str(e)
    except Exception as e:  # av.error.FFmpegError and OSError: not a readable container
        return None, f"PyAV cannot open it ({avmedia.first_line(e)})"
    if not container.streams.video:
        container.close()
        return None, "the file has no video track"
    return avmedia.AvVideoTrack(container, feat, _import_vision().RateGate(feat.rate_hz)), ""


def _cues(path, transcript):
    if transcript is None:
        side = sidecar_transcript(path)
        return read_transcript(side) if side else []
    if isinstance(transcript, (str, os.PathLike)):
        return read_transcript(os.fspath(transcript))
    return list(transcript)
