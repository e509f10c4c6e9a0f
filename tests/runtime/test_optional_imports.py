"""A missing optional library is one BackendUnavailable line naming it and the fix."""
import sys

import pytest

from hrlf.runtime.capture import asr_pocketsphinx, asr_whisper, avmedia, vad
from hrlf.errors import BackendUnavailable, import_optional, unavailable_reason_of
from hrlf.runtime.featurizers import audio, text, vision


def test_import_optional_and_unavailable_reason_of(monkeypatch):
    assert import_optional("json", "json", "nothing") is sys.modules["json"]
    monkeypatch.setitem(sys.modules, "hrlf_missing_lib", None)
    with pytest.raises(BackendUnavailable) as e:
        import_optional("hrlf_missing_lib", "thing: missing_lib", "pip install missing_lib")
    msg = str(e.value)
    assert msg.startswith("thing: missing_lib is not installed (") and "\n" not in msg
    assert msg.endswith("; pip install missing_lib")

    def probe():
        import_optional("hrlf_missing_lib", "thing: missing_lib", "pip install missing_lib")

    assert unavailable_reason_of(probe) == msg
    assert unavailable_reason_of(lambda: None) is None


_CACHED = (vad._webrtcvad, asr_pocketsphinx._pocketsphinx, asr_whisper._faster_whisper,
           avmedia.import_av, audio._smile, text._analyzer)


@pytest.mark.parametrize("module,load,start,fix", [
    ("webrtcvad", vad._webrtcvad, "voice activity (webrtcvad-v1): webrtcvad",
     "pip install webrtcvad-wheels (hrlf[capture])"),
    ("pocketsphinx", asr_pocketsphinx._pocketsphinx, "speech recognition (pocketsphinx): "
     "pocketsphinx", "pip install pocketsphinx==5.1.1 (hrlf[capture])"),
    ("faster_whisper", asr_whisper._faster_whisper, "speech recognition (whisper): faster-whisper",
     "pip install 'hrlf[asr]' (faster-whisper)"),
    ("cv2", vision.import_cv2, "OpenCV", "pip install 'opencv-python-headless<5' (hrlf[capture])"),
    ("av", avmedia.import_av, "PyAV", "pip install av (hrlf[capture])"),
    ("opensmile", audio._smile, "audio featurizer egemaps-lld-v02: opensmile",
     "pip install opensmile, or use logmel40-v1"),
    ("vaderSentiment", text._analyzer, "text featurizer vader-hash-v1: vaderSentiment",
     "pip install vaderSentiment"),
])
def test_each_optional_library(monkeypatch, module, load, start, fix):
    for name in [module] + [k for k in sys.modules if k.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, name, None)  # imports fail as without the library
    for f in _CACHED:
        f.cache_clear()
    try:
        with pytest.raises(BackendUnavailable) as e:
            load()
        msg = str(e.value)
        assert msg.startswith(start + " is not installed (") and msg.endswith("; " + fix)
        assert "\n" not in msg
    finally:
        for f in _CACHED:
            f.cache_clear()
