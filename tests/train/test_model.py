import itertools

import pytest
import torch

from hrlf.errors import ArtifactError
from hrlf.train.checkpoint import load_network, save_network
from hrlf.train.model import HRLFNet, InferenceGraph, ModelConfig, inference_parameters

DIMS = {"text": 6, "audio": 5, "vision": 4}


def _batch(b, frames=(3, 7, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for (m, d), t in zip(DIMS.items(), frames):
        out[m] = torch.randn(b, t, d, generator=g)
        out[m + "_mask"] = (torch.rand(b, t, generator=g) > 0.3).float()
    out["modality_mask"] = torch.ones(b, 3)
    return out


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return HRLFNet(ModelConfig(dims=DIMS, layers=2)).eval()


@pytest.mark.parametrize("mask", list(itertools.product([0.0, 1.0], repeat=3)))
def test_every_modality_mask_gives_finite_scores(net, mask):
    b = _batch(4)
    b["modality_mask"][:] = torch.tensor(mask)
    out = net(b)
    assert torch.isfinite(out["score"]).all()
    assert (out["score"].abs() <= 3).all()
    for k in ("H", "I1", "I2", "I3", "Ht"):
        assert torch.isfinite(out[k]).all()


def test_masked_content_is_ignored(net):
    b = _batch(3)
    ref = net(b)["score"]
    noisy = {k: v.clone() for k, v in b.items()}
    for m in DIMS:
        noisy[m] = noisy[m] + 100.0 * (1 - noisy[m + "_mask"])[..., None]  # garbage in masked slots
    torch.testing.assert_close(net(noisy)["score"], ref)
    # an absent modality's features do not matter either
    b2 = {k: v.clone() for k, v in b.items()}
    b2["modality_mask"][:, 1] = 0
    b3 = {k: v.clone() for k, v in b2.items()}
    b3["audio"] = torch.randn_like(b3["audio"])
    torch.testing.assert_close(net(b2)["score"], net(b3)["score"])


def test_inference_graph_and_params(net):
    b = _batch(2)
    torch.testing.assert_close(InferenceGraph(net)(**b), net(b)["score"])
    assert 0 < inference_parameters(net) < sum(p.numel() for p in net.parameters())


def test_checkpoint_round_trip_and_errors(net, tmp_path):
    p = tmp_path / "student.pt"
    save_network(p, net, role="student")
    back, meta = load_network(p, role="student")
    assert meta["role"] == "student"
    b = _batch(2)
    torch.testing.assert_close(back(b)["score"], net(b)["score"])
    with pytest.raises(ArtifactError, match="expected 'teacher'"):
        load_network(p, role="teacher")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(ArtifactError, match="not a readable hrlf checkpoint"):
        load_network(junk)
    torch.save({"format": "something-else"}, tmp_path / "foreign.pt")
    with pytest.raises(ArtifactError, match="not an hrlf network checkpoint"):
        load_network(tmp_path / "foreign.pt")
    blob = torch.load(p, weights_only=True)
    blob["format_version"] = 99
    torch.save(blob, tmp_path / "future.pt")
    with pytest.raises(ArtifactError, match="format version 99"):
        load_network(tmp_path / "future.pt")
    blob["format_version"] = 1
    blob["model_config"]["dims"]["audio"] = 9
    torch.save(blob, tmp_path / "mismatch.pt")
    with pytest.raises(ArtifactError, match="do not match the stored architecture"):
        load_network(tmp_path / "mismatch.pt")


def test_representations_before_or_after_dropout():
    """I1-Ht are reported before dropout by default (the teacher, in eval mode, has none);
    ``reps_after_dropout`` reports the dropped-out tensors; the score is the same either way."""
    b = _batch(16)
    out = {}
    for after in (False, True):
        torch.manual_seed(0)
        n = HRLFNet(ModelConfig(dims=DIMS, layers=1, out_dropout=0.5,
                                reps_after_dropout=after)).train()
        torch.manual_seed(1)
        out[after] = n(b)
    torch.testing.assert_close(out[False]["raw"], out[True]["raw"])
    for k in ("I1", "I2", "I3", "Ht"):
        # dropout zeroes about half of the after-dropout entries and scales the rest by 2
        kept = out[True][k] != 0
        torch.testing.assert_close(out[True][k][kept], 2 * out[False][k][kept])
        assert (out[True][k] == 0).float().mean() > (out[False][k] == 0).float().mean() + 0.2


def _layer_before(self, x, key_bias):
    """EncoderLayer.forward before the logit floor and the flattened rows."""
    import math

    b, t, d = x.shape
    q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.h, self.hd).permute(2, 0, 3, 1, 4)
    att = self.attn_drop(((q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + key_bias).softmax(-1))
    x = x + self.res_drop(self.proj((att @ v).transpose(1, 2).reshape(b, t, d)))
    return x + self.res_drop(self.ff(self.ln2(x)))


def _train_steps(monkeypatch, floor: bool, heads: int, steps: int = 25) -> dict:
    """A few Adam steps of an encoder on inputs with masked frames and absent
    modalities; the state dict after them."""
    from hrlf.train import model as M

    if not floor:  # the layer as it was before the logit floor and the flattened rows
        monkeypatch.setattr(M.EncoderLayer, "forward", _layer_before)
    torch.manual_seed(0)
    net = HRLFNet(ModelConfig(dims=DIMS, layers=2, heads=heads))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for i in range(steps):
        b = _batch(8, frames=(5, 9, 7), seed=i)
        b["modality_mask"][::3, i % 3] = 0
        b = {k: v * 4 if k in DIMS else v for k, v in b.items()}  # spread the logits
        loss = (net(b)["score"] - torch.linspace(-2, 2, 8)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    monkeypatch.undo()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("heads", [10, 2, 1])
def test_logit_floor_leaves_training_bit_identical(monkeypatch, heads):
    """The floor of masked_softmax (for ONNX Runtime's Softmax) and the flattened rows (for
    Gemm with fused bias) change no bit of training: forward, backward and Adam give the
    same weights as the layer before them."""
    from hrlf.train import model as M

    s = torch.randn(2, 10, 6, 6) * 30  # logits spread wider than the floor
    bias = torch.tensor([0, 0, -1e4, 0, -1e4, 0.0])[None, None, None, :]
    floored = torch.maximum(s + bias, (s + bias).amax(-1, keepdim=True) - M.LOGIT_FLOOR)
    assert bool((floored != s + bias).any())  # the floor is active on this input
    ref = _train_steps(monkeypatch, floor=False, heads=heads)
    new = _train_steps(monkeypatch, floor=True, heads=heads)
    assert ref.keys() == new.keys()
    for k in ref:
        assert torch.equal(ref[k], new[k]), k
    out = M.masked_softmax(s, bias)
    assert torch.equal(out[..., [2, 4]] < 1e-25, torch.ones_like(out[..., [2, 4]], dtype=bool))
    torch.testing.assert_close(out, (s + bias).softmax(-1), rtol=0, atol=1e-25)
