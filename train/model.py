"""The HRLF network (teacher and student share it; weights are separate).

Per modality: Conv1d(d_m -> d, k=3) + sinusoidal PE -> Transformer encoder -> Z_m (the
last *valid* time step) -> sentiment-relevant code Q_m (d/2) and modality-specific code
U_m (d/2). Fusion H = [Q_l;U_l;Q_a;U_a;Q_v;U_v] (3d) -> FC stack 3d->2d->d->2d->3d ->
linear head -> score. The shared decoder D_r (used by FRF) is training-only; export and
the runtime see :class:`InferenceGraph` alone.

Masks. Every encoder prepends a learned, always-valid "null" token, so attention never
sees a fully masked row (no NaN in FP32 or FP16) and an absent modality (no valid frame)
yields a defined, learned code. Masked keys get a finite -1e4 bias, which stays finite in
FP16, and every logit is floored 60 below its row's maximum (:func:`masked_softmax`).
Features are multiplied by the effective frame mask inside the graph, so the output never
depends on what a caller left in masked slots.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..runtime.spec import MODALITIES, MODALITY_MASK, frame_mask_name

MASK_BIAS = -1e4  # finite in FP16 (max 65504); exp(-1e4) underflows to exactly 0
#: Attention logits more than this far below their row's maximum are raised to it
#: before the softmax (see :func:`masked_softmax`).
LOGIT_FLOOR = 60.0
#: Attention heads of the paper's encoders (d = 40: heads of width 4); the default, and
#: what the MOSI reproduction uses.
PAPER_HEADS = 10
#: The edge configuration: one head of width d. Same parameters and FLOPs, fewer and larger
#: attention tensors (faster on CPUs); decided by the paired comparison in results/heads.md.
#: The default for models trained on clip lists (:func:`hrlf.train.regime.edge_heads`).
EDGE_HEADS = 1


@dataclass
class ModelConfig:
    """Architecture; stored in every checkpoint (nanoGPT's ``model_args``)."""

    dims: dict = field(default_factory=lambda: {"text": 100, "audio": 73, "vision": 100})
    d: int = 40
    heads: int = PAPER_HEADS
    layers: int = 4
    ffn_mult: int = 4
    embed_dropout: float = 0.2
    attn_dropout: float = 0.1
    out_dropout: float = 0.1
    #: report I1, I2, I3, Ht after dropout (the earlier behaviour) instead of before it
    reps_after_dropout: bool = False
    score_range: tuple = (-3.0, 3.0)

    def __post_init__(self):
        if self.d % self.heads or self.d % 2:
            raise ValueError(f"d={self.d} must be even and divisible by heads={self.heads}")
        self.score_range = tuple(self.score_range)


def sinusoidal_pe(t: int | torch.Tensor, d: int, device=None) -> torch.Tensor:
    """(T, d) sinusoidal position encoding, computed for any (dynamic) T."""
    pos = torch.arange(t, device=device, dtype=torch.float32)[:, None]
    i = torch.arange(0, d, 2, device=device, dtype=torch.float32)
    ang = pos * torch.exp(-math.log(10000.0) * i / d)[None, :]
    return torch.stack([torch.sin(ang), torch.cos(ang)], -1).reshape(-1, d)


def masked_softmax(scores: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
    """softmax(scores + key_bias) over the last axis, with every logit floored at its row's
    maximum minus :data:`LOGIT_FLOOR`.

    Why the floor: exp(x - max) below about -87 is a subnormal float, and ONNX Runtime's
    Softmax (MLAS) can be several times slower on rows that produce them (7.3x on a masked
    (32, 10, 41, 41) input in shared/design/toolchain-notes.md); a masked key (bias -1e4)
    always does. With the floor every exponent is >= -60: a floored key keeps a weight
    <= e^-60 (9e-27) of the largest one, so even 10^4 such keys move a row's sum or its
    weighted values by < 1e-22 relative, 10^-15 of float32's resolution (2^-24): the
    result is the same float32 number, in training and in the exported graph (tests check
    both bit for bit). e^-60 rather than e^-80 keeps those weights times the values clear
    of subnormal products in the next MatMul.
    """
    s = scores + key_bias
    return torch.maximum(s, s.amax(-1, keepdim=True) - LOGIT_FLOOR).softmax(-1)


class EncoderLayer(nn.Module):
    """Pre-LN Transformer layer with an additive key bias (MulT style)."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.h, self.hd = c.heads, c.d // c.heads
        self.ln1, self.ln2 = nn.LayerNorm(c.d), nn.LayerNorm(c.d)
        self.qkv, self.proj = nn.Linear(c.d, 3 * c.d), nn.Linear(c.d, c.d)
        self.ff = nn.Sequential(nn.Linear(c.d, c.ffn_mult * c.d), nn.ReLU(),
                                nn.Dropout(c.out_dropout), nn.Linear(c.ffn_mult * c.d, c.d))
        self.attn_drop, self.res_drop = nn.Dropout(c.attn_dropout), nn.Dropout(c.out_dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        # Rows flattened to (B*T, d): every Linear exports as a Gemm with its bias fused
        # (as MatMul + Add on 3-D input), and PyTorch computes the same addmm either way.
        x = x.reshape(b * t, d)
        q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.h, self.hd).permute(2, 0, 3, 1, 4)
        att = masked_softmax((q @ k.transpose(-1, -2)) / math.sqrt(self.hd), key_bias)
        att = self.attn_drop(att)  # (B, h, T, T)
        x = x + self.res_drop(self.proj((att @ v).transpose(1, 2).reshape(b * t, d)))
        return (x + self.res_drop(self.ff(self.ln2(x)))).reshape(b, t, d)


class ModalityEncoder(nn.Module):
    """Conv1d + PE + Transformer; returns Z (B, d) at the last valid time step."""

    def __init__(self, dim_in: int, c: ModelConfig):
        super().__init__()
        self.conv = nn.Conv1d(dim_in, c.d, kernel_size=3, padding=1, bias=False)
        self.null = nn.Parameter(torch.zeros(1, 1, c.d))
        nn.init.normal_(self.null, std=0.02)
        self.drop = nn.Dropout(c.embed_dropout)
        self.layers = nn.ModuleList(EncoderLayer(c) for _ in range(c.layers))
        self.ln = nn.LayerNorm(c.d)
        self.scale = math.sqrt(c.d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x (B, T, d_m) zeroed where mask (B, T) is 0
        b = x.shape[0]
        h = self.conv(x.transpose(1, 2)).transpose(1, 2) * self.scale  # (B, T, d)
        h = h + sinusoidal_pe(x.shape[1], h.shape[-1], x.device)[None]
        h = self.drop(torch.cat([self.null.expand(b, -1, -1), h], 1))  # (B, 1+T, d)
        m = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)  # null token always valid
        bias = ((1.0 - m) * MASK_BIAS)[:, None, None, :]
        for layer in self.layers:
            h = layer(h, bias)
        h = self.ln(h)
        # one-hot of the last valid position: valid and no valid position after it
        count = torch.cumsum(m, 1)
        last = m * (count == count[:, -1:]).to(m.dtype)
        return (h * last[..., None]).sum(1)


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


class HRLFNet(nn.Module):
    """One HRLF network (teacher or student)."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.config = c
        d, half = c.d, c.d // 2
        self.enc = nn.ModuleDict({m: ModalityEncoder(c.dims[m], c) for m in MODALITIES})
        self.sent = nn.ModuleDict({m: mlp(d, d, half) for m in MODALITIES})   # E^S_m
        self.spec = nn.ModuleDict({m: mlp(d, d, half) for m in MODALITIES})   # E^M_m
        self.decoder = mlp(d, d, d)                                            # D_r (shared)
        self.fc1, self.fc2 = nn.Linear(3 * d, 2 * d), nn.Linear(2 * d, d)
        self.fc3, self.fc4 = nn.Linear(d, 2 * d), nn.Linear(2 * d, 3 * d)
        self.head = nn.Linear(3 * d, 1)
        self.drop = nn.Dropout(c.out_dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict:
        """Everything training needs: Z, Q, U per modality; H, I1, I2, I3, Ht; raw and score."""
        out = {"Z": {}, "Q": {}, "U": {}}
        for i, m in enumerate(MODALITIES):
            fm = batch[frame_mask_name(m)] * batch[MODALITY_MASK][:, i:i + 1]
            z = self.enc[m](batch[m] * fm[..., None], fm)
            out["Z"][m], out["Q"][m], out["U"][m] = z, self.sent[m](z), self.spec[m](z)
        h = torch.cat([torch.cat([out["Q"][m], out["U"][m]], -1) for m in MODALITIES], -1)
        # I1, I2, I3, Ht are reported *before* dropout: HMI and HAL compare them with the
        # frozen teacher's (eval mode, no dropout), and dropout's zero pattern alone would
        # tell the two apart. In eval mode (export, runtime) dropout is the identity.
        i1 = torch.relu(self.fc1(h))
        d1 = self.drop(i1)
        i2 = torch.relu(self.fc2(d1))
        d2 = self.drop(i2)
        i3 = torch.relu(self.fc3(d2))
        d3 = self.drop(i3)
        ht = torch.relu(self.fc4(d3))
        dt = self.drop(ht)
        raw = self.head(dt).squeeze(-1)
        lo, hi = self.config.score_range
        reps = (d1, d2, d3, dt) if self.config.reps_after_dropout else (i1, i2, i3, ht)
        out.update(H=h, I1=reps[0], I2=reps[1], I3=reps[2], Ht=reps[3], raw=raw,
                   score=raw.clamp(lo, hi))
        return out

    def translate(self, q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """D_r([Q_alpha; U_beta]) -> a representation in modality beta's Z domain."""
        return self.decoder(torch.cat([q, u], -1))


class InferenceGraph(nn.Module):
    """The student's inference path with the ONNX interface (named tensor arguments)."""

    def __init__(self, net: HRLFNet):
        super().__init__()
        self.net = net.eval()

    def forward(self, text, audio, vision, text_mask, audio_mask, vision_mask, modality_mask):
        batch = {"text": text, "audio": audio, "vision": vision, "text_mask": text_mask,
                 "audio_mask": audio_mask, "vision_mask": vision_mask,
                 MODALITY_MASK: modality_mask}
        return self.net(batch)["score"]


def inference_parameters(net: HRLFNet) -> int:
    """Parameters on the inference path (the decoder D_r is training-only)."""
    return sum(p.numel() for n, p in net.named_parameters() if not n.startswith("decoder."))


def config_dict(c: ModelConfig) -> dict:
    d = asdict(c)
    d["score_range"] = list(c.score_range)
    return d
