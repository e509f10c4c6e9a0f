"""Small-data regime, linear-probe floor and clip-level metrics (fast, no media)."""
from __future__ import annotations

import numpy as np
import pytest

from hrlf.runtime.spec import MODALITIES, frame_mask_name
from hrlf.train import loop as L
from hrlf.train import probe, regime
from hrlf.train.evaluate import clip_metrics, clip_report, clip_scores


def test_small_data_defaults_are_chosen_and_explained():
    cfg = L.TrainConfig()
    ch = regime.choose(cfg, 45)
    assert cfg.batch_size == 8 and cfg.min_steps == regime.MIN_STEPS
    assert cfg.epochs * int(np.ceil(45 / 8)) >= regime.MIN_STEPS  # enough steps
    assert cfg.weight_decay > 0 and cfg.select == "lav" and cfg.model["layers"] == 2
    assert cfg.early_stop >= 10
    assert all(c["why"] and c["why"] != "set by the user" for c in ch.values())


def test_explicit_values_win_over_small_data_defaults():
    cfg = L.TrainConfig(batch_size=32, epochs=3, model={"layers": 4})
    ch = regime.choose(cfg, 45)
    assert (cfg.batch_size, cfg.epochs, cfg.model["layers"]) == (32, 3, 4)
    assert cfg.min_steps == 0  # epochs given: no minimum forces more
    assert ch["batch_size"]["why"] == ch["epochs"]["why"] == "set by the user"


def test_large_data_keeps_the_papers_settings():
    cfg = L.TrainConfig()
    regime.choose(cfg, 1252)
    assert (cfg.batch_size, cfg.epochs, cfg.early_stop, cfg.weight_decay, cfg.min_steps,
            cfg.select) == (128, 50, 10, 0.0, 0, "conditions")
    assert "layers" not in cfg.model
    # a stage built from an unresolved config gets the same values
    assert regime.filled(L.TrainConfig()).batch_size == 128


def test_clip_models_get_the_edge_heads_unless_set():
    from hrlf.train.model import EDGE_HEADS, PAPER_HEADS, ModelConfig

    for n in (45, 5000):  # small and large clip lists alike
        cfg = L.TrainConfig()
        ch = regime.choose(cfg, n, clips=True)
        assert cfg.model["heads"] == EDGE_HEADS and "results/heads.md" in ch["model.heads"]["why"]
    cfg = L.TrainConfig(model={"heads": PAPER_HEADS})
    ch = regime.choose(cfg, 45, clips=True)
    assert cfg.model["heads"] == PAPER_HEADS and ch["model.heads"]["why"] == "set by the user"
    cfg = L.TrainConfig()
    regime.choose(cfg, 45)  # MOSI, synthetic: the paper's heads (ModelConfig's default)
    assert "heads" not in cfg.model and ModelConfig().heads == PAPER_HEADS


def _batch(x: dict, n: int) -> dict:
    out = {}
    for m in MODALITIES:
        out[m] = x[m][:, None, :].repeat(2, axis=1).astype(np.float32)
        out[frame_mask_name(m)] = np.ones((n, 2), np.float32)
    return out


def _data(n: int, rng, signal: str = "text"):
    y = np.where(np.arange(n) % 2 == 0, 2.0, -2.0)
    x = {m: rng.normal(size=(n, 6)) for m in MODALITIES}
    x[signal][:, 0] += y
    return _batch(x, n), y, np.repeat(np.arange(n // 2), 2)


def test_probe_finds_the_modality_that_carries_the_label():
    rng = np.random.default_rng(0)
    tr, ytr, gtr = _data(40, rng)
    va, yva, gva = _data(12, rng)
    p = probe.fit_probes(tr, ytr, gtr, va, yva, gva)
    assert p["text"]["acc2"] >= 0.9 and p["vision"]["acc2"] < 0.9
    assert p["floor"] in ("text", "all") and p["constant"]["mae"] == pytest.approx(2.0, abs=0.2)
    assert p["text"]["clip"]["clips"] == 6
    good = {"mae": p[p["floor"]]["mae"], "acc2": p[p["floor"]]["acc2"]}
    assert probe.floor_warning(good, p) is None
    bad = {"mae": 1.95, "acc2": 0.5}
    w = probe.floor_warning(bad, p)
    assert w and "learned nothing" in w and "probe did" in w and "\n" not in w


def test_warning_says_when_nothing_is_learnable():
    rng = np.random.default_rng(1)
    tr, ytr, gtr = _data(40, rng)
    va, yva, gva = _data(12, rng)
    ytr, yva = rng.permutation(ytr), rng.permutation(yva)  # labels unrelated to features
    p = probe.fit_probes(tr, ytr, gtr, va, yva, gva)
    w = probe.floor_warning({"mae": 2.0, "acc2": 0.5}, p)
    assert w and "neither did the linear probe" in w


def test_window_means_ignore_masked_frames():
    b = {m: np.zeros((1, 3, 2), np.float32) for m in MODALITIES}
    b.update({frame_mask_name(m): np.zeros((1, 3), np.float32) for m in MODALITIES})
    b["text"][0] = [[1, 1], [3, 3], [100, 100]]
    b[frame_mask_name("text")][0] = [1, 1, 0]
    x = probe.window_means(b)
    assert x.shape == (1, 6) and x[0, :2].tolist() == [2.0, 2.0] and x[0, 2:].tolist() == [0] * 4


def test_clip_level_metrics_average_windows_per_clip():
    pred = np.array([1.0, -0.2, 0.1, -1.0, -2.0])
    label = np.array([2.0, 2.0, 2.0, -2.0, -2.0])
    groups = np.array(["a", "a", "a", "b", "b"])
    c = clip_scores(pred, label, groups)
    assert c["clip"].tolist() == ["a", "b"] and c["windows"].tolist() == [3, 2]
    assert np.allclose(c["score"], [0.3, -1.5])
    m = clip_metrics(pred, label, groups)
    assert m == {"sign_acc": 1.0, "mae": round((1.7 + 0.5) / 2, 4), "clips": 2}
    rep = clip_report({k: pred for k in ("l", "a", "v", "la", "lv", "av", "lav")}, label, groups)
    assert rep["conditions"]["avg6"]["sign_acc"] == 1.0 and len(rep["clips"]) == 2


def test_shrunk_normalization_keeps_rare_features_small():
    norm = {"text": {"mean": (0.0, 0.0), "std": (1.0, 0.1)}}
    out = regime.normalization(norm, "shrunk")["text"]["std"]
    pooled = np.sqrt((1.0 + 0.01) / 2)
    assert out[0] == pytest.approx(np.sqrt((1 + pooled ** 2) / 2))
    assert out[1] == pytest.approx(np.sqrt((0.01 + pooled ** 2) / 2)) and out[1] > 0.5
    assert regime.normalization(norm, "z") is norm


def test_switched_off_modality_cannot_change_the_output():
    import torch

    from hrlf.train.model import HRLFNet, ModelConfig

    torch.manual_seed(0)
    net = HRLFNet(ModelConfig(dims={"text": 4, "audio": 3, "vision": 5}, layers=1, d=8,
                              heads=2)).eval()
    L.switch_off(net, "vision")
    rng = np.random.default_rng(0)
    batch = {m: torch.from_numpy(rng.normal(size=(2, 3, d)).astype(np.float32))
             for m, d in (("text", 4), ("audio", 3), ("vision", 5))}
    batch.update({frame_mask_name(m): torch.ones(2, 3) for m in MODALITIES})
    batch["modality_mask"] = torch.ones(2, 3)
    a = net(batch)["raw"]
    batch["vision"] = batch["vision"] * 10 + 3
    batch[frame_mask_name("vision")][0, 1:] = 0
    assert torch.allclose(a, net(batch)["raw"])
    assert not net.sent["vision"][-1].weight.requires_grad


def test_warning_when_no_modality_carries_the_label_across_training_clips():
    rng = np.random.default_rng(2)
    tr, ytr, gtr = _data(40, rng)
    va, yva, gva = _data(12, rng)
    p = probe.fit_probes(tr, ytr, gtr, va, yva, gva)
    p["cv_unexplained"] = probe.cv_skill(tr, ytr, gtr)
    assert p["cv_unexplained"]["text"] < probe.NOTHING_CV < p["cv_unexplained"]["vision"]
    good = {"mae": p[p["floor"]]["mae"], "acc2": p[p["floor"]]["acc2"]}
    assert probe.floor_warning(good, p) is None
    shuffled = rng.permutation(ytr)
    p["cv_unexplained"] = probe.cv_skill(tr, shuffled, gtr)
    w = probe.floor_warning(good, p)  # even a lucky valid score does not hide it
    assert w and "no modality carries the label" in w
