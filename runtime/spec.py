"""The model spec: one versioned JSON document that travels with every model artifact.

Training writes it (``RUN_DIR/spec.json``), export copies it next to the ONNX files and
records their sha256, and the runtime needs nothing else to feed a model: modality order,
feature dimensions, frame rates and frames per window, window/hop, normalization, mask and
output semantics, the training data's fingerprint, training-time metrics and the version.

Loading validates everything and fails with one line naming the field and the fix.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..version import __version__
from ..errors import ArtifactError, SpecError, suggest
from .limits import load_json
from .model_cache import sha256_file, sha256_stamped

SPEC_VERSION = 1
SPEC_FILE = "spec.json"
MODALITIES = ("text", "audio", "vision")
#: Letters used only in condition labels ({l}, {a}, {v}, ...).
LETTERS = {"text": "l", "audio": "a", "vision": "v"}
MODALITY_MASK = "modality_mask"
SCORE = "score"

#: What the masks mean. Fixed for spec_version 1 and written into every spec so that a
#: reader never has to guess absence from zeros.
MASK_SEMANTICS = {
    "modality_mask": "float32 (batch, 3) in spec modality order; 1 = modality present, 0 = absent",
    "frame_mask": "float32 (batch, frames) per modality, input '<modality>_mask'; 1 = valid frame",
    "absent_features": "features of an absent modality or a masked frame are 0 after normalization",
    "effective_frame_mask": "frame_mask * modality_mask[:, m]",
}


def frame_mask_name(modality: str) -> str:
    """ONNX input name of a modality's per-frame mask."""
    return f"{modality}_mask"


def input_names() -> list[str]:
    """ONNX input names in their fixed order."""
    return list(MODALITIES) + [frame_mask_name(m) for m in MODALITIES] + [MODALITY_MASK]


@dataclass(frozen=True)
class ModalitySpec:
    """One modality's input: ``frames`` frames of ``dim`` features per window.

    Attributes:
        dim: feature dimension.
        frame_rate_hz: frames per second of the featurizer's output.
        frames: frames per window, ``round(window_s * frame_rate_hz)`` (at least 1).
        featurizer: name of the featurizer the model expects (a stream must provide it).
        vad: audio only, optional: the voice-activity gate the features were made with
            (``{"name": "webrtcvad-v1", ...}``, see :mod:`hrlf.runtime.capture.vad`); frames
            without voice were left out in training, so the runtime leaves them out too.
            None (absent in older spec.json files): no gate.
        asr: text only, optional: the speech recognizer that made the training text of clips
            without a transcript (``{"engine": "whisper", "model": "tiny.en", "clips": 12}``,
            see :mod:`hrlf.runtime.capture.asr_engines`); None (absent in older files):
            the training text was typed transcripts.
    """

    dim: int
    frame_rate_hz: float
    frames: int
    featurizer: str
    vad: Mapping[str, Any] | None = None
    asr: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class OutputSpec:
    """Output semantics: a score in ``score_range`` and labels cut at ``thresholds``."""

    score_range: tuple[float, float] = (-3.0, 3.0)
    thresholds: tuple[float, ...] = (-0.5, 0.5)
    labels: tuple[str, ...] = ("negative", "neutral", "positive")

    def label(self, score: float) -> str:
        """The label of one score: ``labels[i]`` where i = number of thresholds <= score."""
        return self.labels[sum(1 for t in self.thresholds if score >= t)]


@dataclass(frozen=True)
class ModelSpec:
    """The validated, frozen contents of ``spec.json`` (see module docstring)."""

    features: Mapping[str, ModalitySpec]
    window_s: float
    hop_s: float
    norm: Mapping[str, Mapping[str, tuple[float, ...]]]
    data: Mapping[str, Any]
    output: OutputSpec = OutputSpec()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)
    modalities: tuple[str, ...] = MODALITIES
    mask: Mapping[str, str] = field(default_factory=lambda: dict(MASK_SEMANTICS))
    #: modalities the model was trained without (``hrlf-train``'s ``modalities_off``):
    #: the runtime drops their frames (``not_trained``) and reports them absent
    modalities_off: tuple[str, ...] = ()
    hrlf_version: str = __version__
    spec_version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        _validate(self)

    # ---- convenience -------------------------------------------------------------
    def dim(self, modality: str) -> int:
        return self.features[modality].dim

    def frames(self, modality: str) -> int:
        return self.features[modality].frames

    def label(self, score: float) -> str:
        return self.output.label(score)

    def replace(self, **changes: Any) -> "ModelSpec":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    # ---- (de)serialization -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["modalities"] = list(self.modalities)
        d["modalities_off"] = list(self.modalities_off)
        d["output"] = {k: list(v) for k, v in d["output"].items()}
        d["norm"] = {m: {k: list(v) for k, v in s.items()} for m, s in self.norm.items()}
        for f in d["features"].values():  # optional: older readers never see a null
            for k in _OPTIONAL_MODALITY_FIELDS:
                if f.get(k) is None:
                    f.pop(k, None)
        return {k: d[k] for k in _FIELD_ORDER}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (temp file, then rename)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = SPEC_FILE) -> "ModelSpec":
        """Build and validate a spec from parsed JSON; errors name ``source``."""
        if not isinstance(d, Mapping):
            raise SpecError(f"{source}: top level is {type(d).__name__}, not an object; "
                            "re-export the model with hrlf-export")
        version = d.get("spec_version")
        if version != SPEC_VERSION:
            raise SpecError(f"{source}: spec_version {version!r} is not supported by hrlf "
                            f"{__version__} (supports {SPEC_VERSION}); re-export the model with "
                            "this hrlf version")
        for key in d:
            if key not in _FIELD_ORDER:
                raise SpecError(f"{source}: unknown field '{key}'{suggest(key, _FIELD_ORDER)}; "
                                "remove it or re-export the model")
        for key in _FIELD_ORDER:
            if key not in d and key not in _OPTIONAL_FIELDS:
                raise SpecError(f"{source}: missing field '{key}'; re-export the model "
                                "with hrlf-export")
        try:
            feats = {m: _modality(m, v, source) for m, v in _mapping(d["features"], "features", source).items()}
            output = OutputSpec(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in _mapping(d["output"], "output", source).items()})
            norm = {m: {k: tuple(float(x) for x in v) for k, v in _mapping(s, f"norm.{m}", source).items()}
                    for m, s in _mapping(d["norm"], "norm", source).items()}
            return cls(features=feats, window_s=float(d["window_s"]), hop_s=float(d["hop_s"]),
                       norm=norm, data=dict(d["data"]), output=output, metrics=dict(d["metrics"]),
                       artifacts=dict(d["artifacts"]), modalities=tuple(d["modalities"]),
                       modalities_off=tuple(d.get("modalities_off", ())),
                       mask=dict(d["mask"]), hrlf_version=str(d["hrlf_version"]),
                       spec_version=int(d["spec_version"]))
        except SpecError as e:
            raise SpecError(str(e).replace(SPEC_FILE + ":", source + ":", 1)) from None
        except (TypeError, ValueError) as e:
            raise SpecError(f"{source}: malformed value ({e}); re-export the model with "
                            "hrlf-export") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ModelSpec":
        """Read and validate ``spec.json`` (or a directory holding one)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, SPEC_FILE)
        try:
            with open(path) as f:
                raw = load_json(f, path, SpecError)
        except FileNotFoundError:
            raise SpecError(f"{path}: no such file; point to a RUN_DIR or MODEL_DIR made by "
                            "hrlf-train or hrlf-export") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise SpecError(f"{path}: not valid JSON ({e}); re-export the model") from None
        except OSError as e:  # a directory, no permission, an I/O error
            raise SpecError(f"{path}: cannot be read ({e.strerror or type(e).__name__}); "
                            "make it a readable spec.json file (re-export the model)") from None
        return cls.from_dict(raw, source=path)

    # ---- checks against a model file ----------------------------------------------
    def check_inputs(self, shapes: Mapping[str, tuple], source: str) -> None:
        """Check a model file's input names and feature dims against this spec.

        Args:
            shapes: input name -> shape (symbolic axes as str/None are fine).
            source: the model file's name, for the message.

        Raises:
            SpecError: a missing input or a feature dimension that differs from the spec.
        """
        for name in input_names():
            if name not in shapes:
                raise SpecError(f"{source}: has no input '{name}' (inputs: {sorted(shapes)}); "
                                "export the model with hrlf-export")
        for m in self.modalities:
            last = shapes[m][-1] if len(shapes[m]) == 3 else None
            if isinstance(last, int) and last != self.dim(m):
                raise SpecError(f"{source}: input '{m}' has feature dim {last} but spec.json "
                                f"says {self.dim(m)}; export spec and model together with "
                                "hrlf-export")


_FIELD_ORDER = ("spec_version", "hrlf_version", "modalities", "modalities_off", "features",
                "window_s", "hop_s", "norm", "mask", "output", "data", "metrics", "artifacts")
#: top-level fields that older spec.json files lack (their default applies)
_OPTIONAL_FIELDS = ("modalities_off",)


#: features.<m> fields that older spec.json files lack (their default applies)
_OPTIONAL_MODALITY_FIELDS = ("vad", "asr")


def _mapping(v: Any, name: str, source: str) -> Mapping:
    if not isinstance(v, Mapping):
        raise SpecError(f"{source}: field '{name}' must be an object; re-export the model")
    return v


def _modality(name: str, v: Any, source: str) -> ModalitySpec:
    if not isinstance(v, Mapping):
        raise SpecError(f"{source}: features.{name} must be an object; re-export the model")
    want = [f.name for f in dataclasses.fields(ModalitySpec)]
    for k in v:
        if k not in want:
            raise SpecError(f"{source}: unknown field 'features.{name}.{k}'{suggest(k, want)}; "
                            "remove it or re-export the model")
    for k in want:
        if k not in v and k not in _OPTIONAL_MODALITY_FIELDS:
            raise SpecError(f"{source}: missing field 'features.{name}.{k}'; re-export the model")
    opt = {k: None if v.get(k) is None else dict(_mapping(v[k], f"features.{name}.{k}", source))
           for k in _OPTIONAL_MODALITY_FIELDS}
    return ModalitySpec(dim=v["dim"], frame_rate_hz=float(v["frame_rate_hz"]),
                        frames=v["frames"], featurizer=v["featurizer"], **opt)


#: Upper bounds of spec fields: a tampered or broken spec must not size buffers and model
#: inputs of gigabytes (hrlf.runtime.limits checks what options derive from them).
SPEC_LIMITS = {"window_s": 3600.0, "hop_s": 3600.0, "frame_rate_hz": 1000.0, "dim": 65536,
               "frames": 4096}


def _positive(x: Any, name: str) -> None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
        raise SpecError(f"spec.json: {name} must be a positive number, got {x!r}; fix the spec "
                        "or re-export the model")
    _at_most(x, name)


def _at_most(x: Any, name: str) -> None:
    hi = SPEC_LIMITS[name.rsplit(".", 1)[-1]]
    if x > hi:
        raise SpecError(f"spec.json: {name} {x!r} is over the limit of {hi:g}; fix the spec or "
                        "re-export the model")


def _validate(s: ModelSpec) -> None:
    """Raise SpecError with one line naming the first invalid field."""
    if s.spec_version != SPEC_VERSION:
        raise SpecError(f"spec.json: spec_version {s.spec_version!r} is not supported "
                        f"(supports {SPEC_VERSION}); re-export the model")
    if tuple(s.modalities) != MODALITIES:
        raise SpecError(f"spec.json: modalities must be {list(MODALITIES)} in that order, got "
                        f"{list(s.modalities)}; re-export the model")
    for m in MODALITIES:
        if m not in s.features:
            raise SpecError(f"spec.json: features.{m} is missing; re-export the model")
        if m not in s.norm:
            raise SpecError(f"spec.json: norm.{m} is missing; re-export the model")
    off = s.modalities_off
    if not isinstance(off, tuple) or any(m not in MODALITIES for m in off) \
            or len(set(off)) != len(off) or len(off) == len(MODALITIES):
        raise SpecError(f"spec.json: modalities_off must list some (not all) of "
                        f"{list(MODALITIES)} once each, got {off!r}; re-train the model")
    for m in list(s.features) + list(s.norm):
        if m not in MODALITIES:
            raise SpecError(f"spec.json: unknown modality '{m}'{suggest(m, MODALITIES)}; "
                            f"modalities are {list(MODALITIES)}")
    _positive(s.window_s, "window_s")
    _positive(s.hop_s, "hop_s")
    for m, f in s.features.items():
        if isinstance(f.dim, bool) or not isinstance(f.dim, int) or f.dim <= 0:
            raise SpecError(f"spec.json: features.{m}.dim must be a positive integer, got "
                            f"{f.dim!r}; re-export the model")
        if isinstance(f.frames, bool) or not isinstance(f.frames, int) or f.frames <= 0:
            raise SpecError(f"spec.json: features.{m}.frames must be a positive integer, got "
                            f"{f.frames!r}; re-export the model")
        _at_most(f.dim, f"features.{m}.dim")
        _at_most(f.frames, f"features.{m}.frames")
        _positive(f.frame_rate_hz, f"features.{m}.frame_rate_hz")
        expect = max(1, round(s.window_s * f.frame_rate_hz))
        if f.frames != expect:
            raise SpecError(f"spec.json: features.{m}.frames is {f.frames} but window_s * "
                            f"frame_rate_hz gives {expect}; make them agree")
        if not isinstance(f.featurizer, str) or not f.featurizer:
            raise SpecError(f"spec.json: features.{m}.featurizer must name a featurizer; "
                            "re-export the model")
        if f.vad is not None and (m != "audio" or not isinstance(f.vad, Mapping)
                                  or not isinstance(f.vad.get("name"), str)):
            raise SpecError(f"spec.json: features.{m}.vad must be absent or, for audio only, an "
                            'object with a "name"; re-train the model')
        if f.asr is not None and (m != "text" or not isinstance(f.asr, Mapping)
                                  or not isinstance(f.asr.get("engine"), str)):
            raise SpecError(f"spec.json: features.{m}.asr must be absent or, for text only, an "
                            'object with an "engine"; re-train the model')
        st = s.norm[m]
        if set(st) != {"mean", "std"}:
            raise SpecError(f"spec.json: norm.{m} must have exactly 'mean' and 'std', got "
                            f"{sorted(st)}; re-export the model")
        for k in ("mean", "std"):
            if len(st[k]) != f.dim:
                raise SpecError(f"spec.json: norm.{m}.{k} has {len(st[k])} values but "
                                f"features.{m}.dim is {f.dim}; re-export the model")
            if not all(math.isfinite(x) for x in st[k]):
                raise SpecError(f"spec.json: norm.{m}.{k} has NaN/Inf; re-train the model")
        if any(x <= 0 for x in st["std"]):
            raise SpecError(f"spec.json: norm.{m}.std must be > 0 everywhere; re-train the model")
    if dict(s.mask) != MASK_SEMANTICS:
        raise SpecError("spec.json: mask semantics differ from spec_version 1's; re-export the "
                        "model with this hrlf version")
    o = s.output
    if len(o.score_range) != 2 or not o.score_range[0] < o.score_range[1]:
        raise SpecError(f"spec.json: output.score_range must be [low, high] with low < high, "
                        f"got {list(o.score_range)}")
    if list(o.thresholds) != sorted(o.thresholds) or len(o.labels) != len(o.thresholds) + 1:
        raise SpecError("spec.json: output.thresholds must be ascending with one label more "
                        "than thresholds; fix output in spec.json")
    for k in ("source", "sha256"):
        if not isinstance(s.data.get(k), str):
            raise SpecError(f"spec.json: data.{k} (training data fingerprint) is missing; "
                            "re-train the model")
    for name, digest in s.artifacts.items():
        if not (isinstance(digest, str) and len(digest) == 64
                and all(c in "0123456789abcdef" for c in digest)):
            raise SpecError(f"spec.json: artifacts.{name} must be a sha256 hex digest; "
                            "re-export the model")


def check_artifact(spec: ModelSpec, path: str | os.PathLike) -> None:
    """Check a model file's sha256 against ``spec.artifacts`` (when recorded).

    Raises:
        ArtifactError: the file is missing or differs from the one the spec was written for.
    """
    name = os.path.basename(os.fspath(path))
    want = spec.artifacts.get(name)
    if want is None:
        return
    if not os.path.exists(path):
        raise ArtifactError(f"{path}: no such file; re-export the model with hrlf-export")
    got = sha256_stamped(path)
    if got != want:
        raise ArtifactError(f"{path}: sha256 {got[:12]}… does not match spec.json "
                            f"({want[:12]}…); the model and spec.json are from different "
                            "exports, re-export with hrlf-export")
