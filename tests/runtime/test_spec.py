import json

import pytest

from hrlf.errors import ArtifactError, SpecError
from hrlf.runtime.spec import (MASK_SEMANTICS, ModalitySpec, ModelSpec, check_artifact,
                               input_names, sha256_file)


def make_spec(**kw) -> ModelSpec:
    feats = {"text": ModalitySpec(4, 2.0, 4, "t"), "audio": ModalitySpec(3, 10.0, 20, "a"),
             "vision": ModalitySpec(2, 5.0, 10, "v")}
    norm = {m: {"mean": (0.0,) * f.dim, "std": (1.0,) * f.dim} for m, f in feats.items()}
    args = dict(features=feats, window_s=2.0, hop_s=1.0, norm=norm,
                data={"source": "synthetic", "sha256": "0" * 64})
    args.update(kw)
    return ModelSpec(**args)


def test_round_trip(tmp_path):
    spec = make_spec(metrics={"valid": {"mae": 0.5}}, artifacts={"model.onnx": "a" * 64})
    spec.save(tmp_path / "spec.json")
    back = ModelSpec.load(tmp_path)
    assert back == spec
    assert back.to_dict() == spec.to_dict()
    assert back.mask == MASK_SEMANTICS
    assert back.label(-1.0) == "negative" and back.label(0.0) == "neutral"
    assert back.label(0.5) == "positive"


def _write(tmp_path, d):
    p = tmp_path / "spec.json"
    p.write_text(json.dumps(d))
    return p


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.update(spec_version=99), "spec_version 99 is not supported"),
    (lambda d: d.pop("window_s"), "missing field 'window_s'"),
    (lambda d: d.update(windw_s=1.0), "unknown field 'windw_s' (did you mean 'window_s'?)"),
    (lambda d: d["features"]["audio"].update(dim=5), "norm.audio.mean has 3 values but features.audio.dim is 5"),
    (lambda d: d["features"]["audio"].update(frames=7), "features.audio.frames is 7"),
    (lambda d: d["features"]["audio"].pop("featurizer"), "missing field 'features.audio.featurizer'"),
    (lambda d: d.update(modalities=["audio", "text", "vision"]), "modalities must be"),
    (lambda d: d["norm"]["text"].update(std=[1.0, 0.0, 1.0, 1.0]), "norm.text.std must be > 0"),
    (lambda d: d.update(hop_s=-1), "hop_s must be a positive number"),
    (lambda d: d["output"].update(labels=["a"]), "output.thresholds"),
    (lambda d: d["data"].pop("sha256"), "data.sha256"),
    (lambda d: d["artifacts"].update({"model.onnx": "xyz"}), "artifacts.model.onnx"),
    (lambda d: d.update(mask={"modality_mask": "?"}), "mask semantics"),
])
def test_invalid_spec_one_line(tmp_path, mutate, needle):
    d = make_spec().to_dict()
    mutate(d)
    with pytest.raises(SpecError) as e:
        ModelSpec.load(_write(tmp_path, d))
    msg = str(e.value)
    assert needle in msg
    assert "\n" not in msg and msg.startswith(str(tmp_path))


def test_not_json_and_missing(tmp_path):
    p = tmp_path / "spec.json"
    p.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        ModelSpec.load(p)
    with pytest.raises(SpecError, match="no such file"):
        ModelSpec.load(tmp_path / "nope.json")


def test_dimension_mismatch_with_model_file():
    spec = make_spec()
    shapes = {n: ("batch", "frames", spec.dim(n)) if n in spec.modalities else ("batch", 3)
              for n in input_names()}
    spec.check_inputs(shapes, "model.onnx")
    shapes["audio"] = ("batch", "frames", 74)
    with pytest.raises(SpecError, match="input 'audio' has feature dim 74 but spec.json says 3"):
        spec.check_inputs(shapes, "model.onnx")
    del shapes["modality_mask"]
    with pytest.raises(SpecError, match="has no input 'modality_mask'"):
        spec.check_inputs(shapes, "model.onnx")


def test_artifact_sha(tmp_path):
    f = tmp_path / "model.onnx"
    f.write_bytes(b"abc")
    spec = make_spec(artifacts={"model.onnx": sha256_file(f)})
    check_artifact(spec, f)
    f.write_bytes(b"abd")
    with pytest.raises(ArtifactError, match="does not match spec.json"):
        check_artifact(spec, f)
