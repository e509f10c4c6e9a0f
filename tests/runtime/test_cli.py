"""hrlf-run end to end through click, on the session's exported synthetic model."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from hrlf.runtime.cli import main
from tests.conftest import is_error_line


@pytest.fixture(scope="module")
def model_dir(exported):
    return str(exported[1])


def run(args, input=None):
    r = CliRunner().invoke(main, args, input=input)
    return r, [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def summary(r):
    line = [x for x in r.stderr.splitlines() if x.startswith('{"summary"')][-1]
    return json.loads(line)["summary"]


def test_help_explains_itself():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0 and "Examples:" in r.output and "--stream" in r.output


def test_demo_stream_jsonl(model_dir):
    r, lines = run([model_dir, "--pace", "fast", "--duration", "16", "--stats-every", "0"])
    assert r.exit_code == 0, r.output
    assert [x["segment"] for x in lines] == list(range(15))
    first = lines[0]
    for key in ("t_start", "t_end", "score", "label", "modalities", "frames", "latency_ms",
                "backend", "truth"):
        assert key in first
    assert set(first["latency_ms"]) == {"wait", "pack", "infer", "total"}
    assert -3 <= first["score"] <= 3 and first["backend"] == "ort-cpu-fp32"
    by_seg = {x["segment"]: x for x in lines}
    assert "audio" not in by_seg[9]["modalities"]       # scripted outage 8-14 s
    assert by_seg[5]["modalities"] == ["text", "audio", "vision"]
    s = summary(r)
    assert s["accounting_ok"] and s["pending"] == 0 and s["segments"] == 15
    assert "vs_truth" in s


def test_text_format_and_drop_schedule(model_dir):
    r = CliRunner().invoke(main, [model_dir, "--pace", "fast", "--duration", "8", "--format",
                                  "text", "--drop", "vision:0-8", "--stats-every", "0"])
    assert r.exit_code == 0
    rows = [x for x in r.stdout.splitlines() if x.strip()]
    # full modality names (l/a/v only in condition labels), and why vision is absent
    assert len(rows) == 7 and all("[text+audio " in x for x in rows)
    assert all(x.endswith("no vision (drop_schedule)") for x in rows)
    assert summary(r)["dropped"]["drop_schedule"] > 0


def test_stdin_pipeline_with_bad_lines(model_dir):
    rng = np.random.default_rng(0)
    spec = json.load(open(f"{model_dir}/spec.json"))
    lines = []
    for k in range(40):  # 4 s of audio at 10 Hz frames plus text
        t = k * 0.1 + 0.05
        lines.append(json.dumps({"t": t, "modality": "audio",
                                 "x": rng.normal(size=spec["features"]["audio"]["dim"]).tolist()}))
    lines.insert(5, "{broken")
    lines.insert(9, json.dumps({"t": 0.52, "modality": "audio", "x": [1.0]}))   # wrong dim
    lines.insert(12, json.dumps({"t": 0.3, "modality": "audio",
                                 "x": [0.0] * spec["features"]["audio"]["dim"]}))  # backwards
    lines.insert(20, json.dumps({"t": 1.0, "modality": "smell", "x": [1.0]}))
    r, out = run([model_dir, "--stream", "stdin", "--stats-every", "0"], input="\n".join(lines))
    assert r.exit_code == 0, r.output
    assert out and all(x["modalities"] == ["audio"] for x in out)
    s = summary(r)
    assert s["source_drops"] == {"malformed_json": 1}
    assert s["dropped"] == {"wrong_dim": 1, "out_of_order": 1, "unknown_modality": 1}
    assert s["received"] == 43 and s["used"] == 40 and s["accounting_ok"]


@pytest.mark.parametrize("args, needle", [
    (["--stream", "replai:x"], "unknown kind (did you mean 'replay:x'?)"),
    (["--stream", "replay:/nonexistent.npz"], "no such file"),
    (["--drop", "audio:5"], "expected MODALITY:FROM-TO"),
    (["--condition", "lx"], "condition 'lx'"),
])
def test_bad_arguments_one_line(model_dir, args, needle):
    r = CliRunner().invoke(main, [model_dir, "--pace", "fast", "--duration", "2", *args])
    assert r.exit_code == 1
    msg = r.stderr.strip()
    assert needle in msg and is_error_line(msg, "hrlf-run") and len(msg.splitlines()) == 1


def test_bad_model_dirs_one_line(tmp_path, model_dir):
    r = CliRunner().invoke(main, [str(tmp_path / "nope")])
    assert r.exit_code == 1 and "no such file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    (bad / "model.onnx").write_bytes(b"\x00" * 10)
    r = CliRunner().invoke(main, [str(bad), "--pace", "fast", "--duration", "2"])
    assert r.exit_code == 1 and "does not match spec.json" in r.stderr


def test_foreign_featurizers_refused(model_dir, mosi_path):
    r = CliRunner().invoke(main, [model_dir, "--stream", f"replay:{mosi_path}"])
    assert r.exit_code == 1
    assert "provides text features from 'mosi-bclstm-text-cnn' but the model expects" in r.stderr


def test_named_provider_never_falls_back(model_dir):
    r = CliRunner().invoke(main, [model_dir, "--provider", "cuda", "--pace", "fast"])
    assert r.exit_code == 1 and "CUDAExecutionProvider is not available" in r.stderr
