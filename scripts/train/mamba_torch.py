"""A Mamba-1 language model for training, with a parallel (chunked) selective scan.

Parameter names and shapes are exactly those of transformers' MambaForCausalLM, so the state
dict loads into it unchanged (`export_hf` does that, checks the logits agree and saves).
transformers' own PyTorch path runs the scan as a Python loop over tokens: far too slow to train.

Glossary: d_model → d, d_inner (= expand·d) → di, N → d_state, Δ → delta, A = -exp(A_log).
Shapes: Bsz batch, L tokens.
"""
from __future__ import annotations

import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


def selective_scan(delta, A, Bm, Cm, x, chunk: int = 16):
    """y[b,t,d] = Σ_n h[b,t,d,n]·C[b,t,n], where h[t] = exp(Δ[t]·A)·h[t-1] + Δ[t]·B[t]·x[t], h[-1] = 0.

    delta, x: [Bsz, L, di]; A: [di, N]; Bm, Cm: [Bsz, L, N]. All float32.
    Two levels: a sequential recurrence inside chunks of `chunk` tokens (run for all chunks at
    once), then a recurrence over the chunk ends, then a fix-up that adds each chunk's incoming
    state times the within-chunk decay P[t] = exp(A·Σ_{s≤t in chunk} Δ[s]). Every exponent is
    ≤ 0. Work is O(L·di·N); ~c + L/c small sequential steps instead of L.
    """
    bsz, seqlen, di = x.shape
    n = A.shape[1]
    c = min(chunk, seqlen)
    pad = (-seqlen) % c
    if pad:  # Δ = 0, x = 0 on padding: decay 1, input 0 (and it is cut off below)
        delta = F.pad(delta, (0, 0, 0, pad))
        x = F.pad(x, (0, 0, 0, pad))
        Bm = F.pad(Bm, (0, 0, 0, pad))
        Cm = F.pad(Cm, (0, 0, 0, pad))
    L = seqlen + pad
    nc = L // c

    def to_chunks(t):  # [Bsz, L, k] -> [c, Bsz, nc, k] (position inside chunk first: contiguous slices)
        return t.reshape(bsz, nc, c, t.shape[-1]).permute(2, 0, 1, 3).contiguous()

    dl = to_chunks(delta)  # [c, Bsz, nc, di]
    dx = to_chunks(delta * x)
    bq = to_chunks(Bm)[:, :, :, None, :]  # [c, Bsz, nc, 1, N]
    cq = to_chunks(Cm)  # [c, Bsz, nc, N]
    dA = torch.exp(dl[..., None] * A)  # [c, Bsz, nc, di, N]
    dBx = dx[..., None] * bq  # [c, Bsz, nc, di, N]
    hs = [dBx[0]]
    for i in range(1, c):
        hs.append(torch.addcmul(dBx[i], dA[i], hs[-1]))
    h_local = torch.stack(hs)  # state inside each chunk, as if it started from zero
    P = torch.exp(torch.cumsum(dl, dim=0)[..., None] * A)  # within-chunk decay from the chunk start
    ends, decay = h_local[-1], P[-1]  # [Bsz, nc, di, N]
    carry = [torch.zeros_like(ends[:, 0])]
    for k in range(nc - 1):
        carry.append(torch.addcmul(ends[:, k], decay[:, k], carry[-1]))
    carry_in = torch.stack(carry, dim=1)  # [Bsz, nc, di, N]: state entering chunk k
    h = h_local + P * carry_in[None]
    y = torch.einsum("cbkdn,cbkn->cbkd", h, cq)  # [c, Bsz, nc, di]
    y = y.permute(1, 2, 0, 3).reshape(bsz, L, di)
    return y[:, :seqlen]


def selective_scan_ref(delta, A, Bm, Cm, x):
    """The plain recurrence, token by token (for tests)."""
    bsz, seqlen, di = x.shape
    h = torch.zeros(bsz, di, A.shape[1], dtype=x.dtype, device=x.device)
    ys = []
    for t in range(seqlen):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * x[:, t])[..., None] * Bm[:, t, None, :]
        ys.append(torch.einsum("bdn,bn->bd", h, Cm[:, t]))
    return torch.stack(ys, dim=1)


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Mixer(nn.Module):
    def __init__(self, d_model, d_inner, d_state, dt_rank, d_conv, use_bias=False, use_conv_bias=True,
                 dt_min=1e-3, dt_max=0.1, chunk=16):
        super().__init__()
        self.di, self.n, self.r, self.chunk = d_inner, d_state, dt_rank, chunk
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=use_bias)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=use_conv_bias)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=use_bias)
        # the Mamba reference init: Δ's bias so that softplus(bias) is log-uniform in [dt_min, dt_max]
        with torch.no_grad():
            std = dt_rank ** -0.5
            nn.init.uniform_(self.dt_proj.weight, -std, std)
            dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=1e-4)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, h, taps: dict | None = None):
        L = h.shape[1]
        x, z = self.in_proj(h).chunk(2, dim=-1)  # [Bsz, L, di] each
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :L].transpose(1, 2))
        dt_r, Bm, Cm = self.x_proj(x).split([self.r, self.n, self.n], dim=-1)
        delta = F.softplus(self.dt_proj(dt_r))  # [Bsz, L, di]
        A = -torch.exp(self.A_log.float())  # [di, N]
        y = selective_scan(delta, A, Bm, Cm, x, self.chunk) + x * self.D
        if taps is not None:
            taps["delta"] = delta.detach()
            taps["B"] = Bm.detach()
            taps["C"] = Cm.detach()
        return self.out_proj(y * F.silu(z))


class Block(nn.Module):
    def __init__(self, d_model, mixer_kwargs, eps, dropout):
        super().__init__()
        self.norm = RMSNorm(d_model, eps)
        self.mixer = Mixer(d_model, **mixer_kwargs)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, taps=None):
        return x + self.drop(self.mixer(self.norm(x), taps))


class Backbone(nn.Module):
    def __init__(self, cfg: dict, dropout: float):
        super().__init__()
        d = cfg["hidden_size"]
        mk = dict(d_inner=cfg["expand"] * d, d_state=cfg["state_size"], dt_rank=cfg["time_step_rank"],
                  d_conv=cfg["conv_kernel"], use_bias=cfg.get("use_bias", False),
                  use_conv_bias=cfg.get("use_conv_bias", True))
        self.embeddings = nn.Embedding(cfg["vocab_size"], d)
        self.layers = nn.ModuleList([Block(d, mk, cfg["layer_norm_epsilon"], dropout)
                                     for _ in range(cfg["num_hidden_layers"])])
        self.norm_f = RMSNorm(d, cfg["layer_norm_epsilon"])
        self.drop = nn.Dropout(dropout)


class MambaLM(nn.Module):
    """Same state-dict keys as transformers' MambaForCausalLM (lm_head tied to the embedding)."""

    def __init__(self, cfg: dict, dropout: float = 0.0):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg, dropout)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.lm_head.weight = self.backbone.embeddings.weight  # tied
        nn.init.normal_(self.backbone.embeddings.weight, std=0.02)
        for layer in self.backbone.layers:
            with torch.no_grad():  # GPT-2 style: scale the residual writes by 1/sqrt(n_layer)
                layer.mixer.out_proj.weight.mul_(1 / math.sqrt(cfg["num_hidden_layers"]))

    def forward(self, ids, taps: list | None = None):
        x = self.backbone.drop(self.backbone.embeddings(ids))
        for i, layer in enumerate(self.backbone.layers):
            t = {} if taps is not None else None
            x = layer(x, t)
            if taps is not None:
                taps.append(t)
        return self.lm_head(self.backbone.norm_f(x))

    def param_groups(self, weight_decay: float):
        """No weight decay on A_log, D, norms, biases, and the (tied) embedding."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if name.endswith(("A_log", ".D", "bias")) or "norm" in name or "embeddings" in name:
                no_decay.append(p)
            else:
                decay.append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def hf_config_dict(vocab_size, d_model, n_layer, d_state=16, expand=2, d_conv=4, dt_rank=None):
    return dict(vocab_size=vocab_size, hidden_size=d_model, state_size=d_state, num_hidden_layers=n_layer,
                expand=expand, conv_kernel=d_conv, time_step_rank=dt_rank or math.ceil(d_model / 16),
                layer_norm_epsilon=1e-5, use_bias=False, use_conv_bias=True, tie_word_embeddings=True,
                bos_token_id=None, eos_token_id=None, pad_token_id=None)


@torch.no_grad()
def export_hf(model: MambaLM, out_dir: str, check_ids: torch.Tensor, tol: float = 1e-4) -> dict:
    """Load the weights into transformers' MambaForCausalLM, check its logits against ours on
    `check_ids` (TF32 off), save_pretrained, reload from disk and check again. Returns errors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers import MambaConfig, MambaForCausalLM

    prev = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        model.eval()
        dev = check_ids.device
        hf = MambaForCausalLM(MambaConfig(**model.cfg)).to(dev).float().eval()
        sd = {k: v for k, v in model.state_dict().items()}
        missing, unexpected = hf.load_state_dict(sd, strict=False)
        assert not unexpected, f"unexpected keys: {unexpected}"
        assert set(missing) <= {"lm_head.weight"}, f"missing keys: {missing}"
        hf.tie_weights()
        assert torch.equal(hf.lm_head.weight, model.lm_head.weight)
        ours = model(check_ids).float()
        theirs = hf(check_ids, use_cache=False).logits.float()
        err = ((theirs - ours).norm() / ours.norm()).item()
        print(f"export: HF MambaForCausalLM vs our module, logits rel err {err:.2e}")
        assert err < tol, f"HF logits differ from ours: {err}"
        os.makedirs(out_dir, exist_ok=True)
        hf.save_pretrained(out_dir)
        for f in os.listdir(out_dir):
            if f not in ("config.json", "model.safetensors", "studio.json"):
                os.remove(os.path.join(out_dir, f))
        back = MambaForCausalLM.from_pretrained(out_dir).to(dev).float().eval()
        err2 = ((back(check_ids, use_cache=False).logits.float() - ours).norm() / ours.norm()).item()
        print(f"export: reloaded from {out_dir}, logits rel err {err2:.2e}")
        assert err2 < tol, f"reloaded HF logits differ: {err2}"
        return {"hf_vs_ours_logits_rel_err": err, "reloaded_vs_ours_logits_rel_err": err2}
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev


def write_json(path: str, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")
