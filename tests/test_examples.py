"""Every example runs and its output says what it should (untested samples rot)."""
import json
import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _run(name, *args, timeout=120):
    out = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_robot_callback_keeps_going_when_camera_is_covered():
    lines = _run("robot_callback.py", "--seconds", "9")
    moods = [x for x in lines if "mood" in x and "sees" in x]
    assert len(moods) >= 6
    assert any("sees text,audio,vision" in x for x in moods)
    assert any(x.endswith("sees text,audio") for x in moods)   # camera covered from 6 s
    assert lines[-1].endswith("accounting ok: True")


def test_call_center_many_concurrent_calls_audio_and_text_only():
    lines = _run("call_center.py", "--demo-calls", "6")
    segs = [x for x in lines if x.startswith("[call")]
    assert segs and all("(text+audio)" in x or "(audio)" in x or "(text)" in x for x in segs)
    sums = [json.loads(x)["summary"] for x in lines if x.startswith('{"summary"')]
    assert [s["call"] for s in sums] == [f"call{i}.jsonl" for i in range(1, 7)]
    for s in sums:
        assert s["segments"] == 19 and -3 <= s["mean_score"] <= 3 and not s["frames_dropped"]
        assert s["accounting_ok"]
    hub = json.loads(lines[-1])["hub"]
    assert hub["streams_added"] == 6 and hub["segments"] == 6 * 19 and hub["accounting_ok"]
    assert hub["calls"] < hub["segments"]  # windows of several calls shared backend calls


def test_stream_api_says_why_each_modality_is_absent():
    lines = _run("stream_api.py", "--seconds", "26")
    segs = lines[:-1]
    assert len(segs) == 25 and segs[0].startswith("  0.0-2.0")
    assert all("from text+audio+vision" in x for x in segs[:8])
    assert segs[10].endswith("from text+vision; no audio: demo_outage")
    assert segs[12].endswith("from text; no audio: demo_outage; no vision: demo_outage")
    assert segs[21].endswith("from audio+vision; no text: demo_outage")
    assert lines[-1] == "25 segments, 688 of 688 frames used, accounting ok: True"


def test_push_frames_shows_refusals_and_strict_mode():
    lines = _run("push_frames.py")
    assert lines[0] == ("refused: unknown_modality: push: modality 'Audio' is unknown (did you "
                        "mean 'audio'?); use 'text', 'audio' or 'vision'")
    assert lines[1].startswith("refused: wrong_dim: push: vision frame has shape (31,), the "
                               "model expects (32,)")
    scored = [x for x in lines if "from text+audio" in x]
    assert len(scored) == 3 and all("absent {'vision': 'no_frames'}" in x for x in scored)
    assert "dropped {'unknown_modality': 1, 'wrong_dim': 1}" in lines
    assert lines[-1].startswith("strict: InputError: push: audio frame has shape (3,)")
