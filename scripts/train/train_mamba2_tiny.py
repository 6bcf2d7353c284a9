"""A tiny byte-level Mamba-2 (vocab 256, token id = byte value) trained on tinyshakespeare, for the
tests that need a Mamba-2 with trained weights (real activations: the int8 prefill's accuracy,
test/gpu/int8-prefill.test.ts), where the golden fixtures' weights are random.

    /usr/bin/python3 scripts/train/train_mamba2_tiny.py --data ../shared/data/tinyshakespeare.txt \
        [--out test/fixtures/trained/mamba2-shakespeare-tiny] [--time-budget 420] [--threads 2]

Runs on a CPU (torch ≥ 1.13, no transformers, no einops): its own Mamba-2 in plain torch with the
chunked SSD of the Mamba-2 paper (the "minimal" discrete form), written out in transformers'
Mamba2ForCausalLM layout (config.json + model.safetensors with the parameter names and in_proj
order [z, x, B, C, dt] that test/fixtures/golden/mamba2-*/ have). The last 10 % of the bytes are
held out; the validation loss (nats a byte) goes into train.json beside the model, and the test
checks the studio's own fp32 loss on held-out text against it, which also checks the export.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_torch import RMSNorm  # noqa: E402  (the Mamba-1 trainer's; weight · x / rms)


def segsum(x: torch.Tensor) -> torch.Tensor:
    """[..., T] → [..., T, T]: out[..., i, j] = Σ_{j < k ≤ i} x[..., k] for j ≤ i, −∞ above the diagonal."""
    T = x.size(-1)
    xr = x[..., None].expand(*x.shape, T)  # [..., T(i), T(j)] = x[..., i]
    low = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device), -1)
    xr = xr.masked_fill(~low, 0.0)
    out = torch.cumsum(xr, dim=-2)
    keep = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device), 0)
    return out.masked_fill(~keep, float('-inf'))


def exact(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x


def ssd(X, A, B, C, block: int, code=exact):
    """The chunked SSD. X [b, l, h, p] (x·Δ), A [b, l, h] (Δ·A), B and C [b, l, h, n]; l a multiple of block.
    Returns Y [b, l, h, p] from a zero state. Its four matrix products (C·Bᵀ, (C·Bᵀ ∘ L)·X, Bᵀ·(decay·X),
    C·states) take their operands through code(operand, dim of K): exact here, int8 in
    scripts/train/ssd_int8_accuracy.py."""
    b, l, h, p = X.shape
    c = l // block
    X = X.reshape(b, c, block, h, p)
    B = B.reshape(b, c, block, h, -1)
    C = C.reshape(b, c, block, h, -1)
    A = A.reshape(b, c, block, h).permute(0, 3, 1, 2)  # [b, h, c, l]
    A_cs = torch.cumsum(A, dim=-1)
    L = torch.exp(segsum(A))  # [b, h, c, l, s]
    CB = torch.einsum('bclhn,bcshn->bhcls', code(C, -1), code(B, -1))  # K = n
    Y_diag = torch.einsum('bhcls,bcshp->bclhp', code(CB * L, -1), code(X, 2))  # K = s
    decay_states = torch.exp(A_cs[..., -1:] - A_cs)  # [b, h, c, l]
    DX = X * decay_states.permute(0, 2, 3, 1)[..., None]  # [b, c, l, h, p]
    states = torch.einsum('bclhn,bclhp->bchpn', code(B, 2), code(DX, 2))  # K = l
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)  # [b, c+1, h, p, n]
    decay_chunk = torch.exp(segsum(F.pad(A_cs[..., -1], (1, 0))))  # [b, h, c+1, c+1]
    states = torch.einsum('bhzc,bchpn->bzhpn', decay_chunk, states)[:, :-1]
    Y_off = torch.einsum('bclhn,bchpn->bclhp', code(C, -1), code(states, -1)) * torch.exp(A_cs).permute(0, 2, 3, 1)[..., None]  # K = n
    return (Y_diag + Y_off).reshape(b, l, h, p)


class Mixer(nn.Module):
    """transformers' Mamba2Mixer (one group, use_bias False, conv bias, time_step_limit (0, ∞),
    the gated norm y·silu(z) then RMSNorm over the whole d_inner)."""

    def __init__(self, cfg: dict):
        super().__init__()
        D, self.H, self.P, self.N, self.G = cfg['hidden_size'], cfg['num_heads'], cfg['head_dim'], cfg['state_size'], cfg['n_groups']
        self.Di = self.H * self.P
        self.K = cfg['conv_kernel']
        self.block = cfg['chunk_size']
        conv_dim = self.Di + 2 * self.G * self.N
        self.in_proj = nn.Linear(D, self.Di + conv_dim + self.H, bias=False)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, self.K, groups=conv_dim, padding=self.K - 1, bias=True)
        dt = torch.exp(torch.rand(self.H) * (math.log(0.1) - math.log(0.001)) + math.log(0.001)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹
        self.A_log = nn.Parameter(torch.log(torch.arange(1, self.H + 1, dtype=torch.float32)))
        self.D = nn.Parameter(torch.ones(self.H))
        self.norm = RMSNorm(self.Di, cfg['layer_norm_epsilon'])
        self.out_proj = nn.Linear(self.Di, D, bias=False)

    def forward(self, h):
        b, l, _ = h.shape
        zxbcdt = self.in_proj(h)
        z, xbc, dt = torch.split(zxbcdt, [self.Di, self.Di + 2 * self.G * self.N, self.H], dim=-1)
        xbc = F.silu(self.conv1d(xbc.transpose(1, 2))[..., :l].transpose(1, 2))
        x, Bm, Cm = torch.split(xbc, [self.Di, self.G * self.N, self.G * self.N], dim=-1)
        dt = F.softplus(dt + self.dt_bias)  # [b, l, H]
        A = -torch.exp(self.A_log)
        x = x.reshape(b, l, self.H, self.P)
        Bh = Bm.reshape(b, l, self.G, self.N).repeat_interleave(self.H // self.G, dim=2)
        Ch = Cm.reshape(b, l, self.G, self.N).repeat_interleave(self.H // self.G, dim=2)
        pad = (-l) % self.block
        args = [x * dt[..., None], dt * A, Bh, Ch]
        if pad:
            args = [F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in args]
        y = ssd(*args, self.block)[:, :l]
        y = y + x * self.D[:, None]
        y = self.norm(y.reshape(b, l, self.Di) * F.silu(z))
        return self.out_proj(y)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm = RMSNorm(cfg['hidden_size'], cfg['layer_norm_epsilon'])
        self.mixer = Mixer(cfg)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


class Mamba2LM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = nn.Embedding(cfg['vocab_size'], cfg['hidden_size'])
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg['num_hidden_layers']))
        self.norm_f = RMSNorm(cfg['hidden_size'], cfg['layer_norm_epsilon'])

    def forward(self, ids):
        h = self.embeddings(ids)
        for layer in self.layers:
            h = layer(h)
        return self.norm_f(h) @ self.embeddings.weight.t()  # tied head


def config(args) -> dict:
    d_inner = 2 * args.d_model
    return {
        'architectures': ['Mamba2ForCausalLM'], 'model_type': 'mamba2', 'bos_token_id': None, 'eos_token_id': None, 'pad_token_id': None,
        'vocab_size': 256, 'hidden_size': args.d_model, 'num_hidden_layers': args.layers, 'expand': 2, 'head_dim': args.head_dim,
        'num_heads': d_inner // args.head_dim, 'n_groups': 1, 'state_size': args.d_state, 'conv_kernel': 4, 'chunk_size': 64,
        'hidden_act': 'silu', 'layer_norm_epsilon': 1e-5, 'residual_in_fp32': True, 'rescale_prenorm_residual': False,
        'tie_word_embeddings': True, 'use_bias': False, 'use_conv_bias': True, 'time_step_limit': [0.0, {'__float__': 'Infinity'}],
        'time_step_min': 0.001, 'time_step_max': 0.1, 'time_step_floor': 0.0001, 'time_step_rank': math.ceil(args.d_model / 16),
        'initializer_range': 0.1, 'dtype': 'float32', 'use_cache': True,
    }


def write_safetensors(path: str, tensors: dict[str, torch.Tensor]) -> None:
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header['__metadata__'] = {'format': 'pt'}
    raw = json.dumps(header, separators=(',', ':')).encode()
    raw += b' ' * ((8 - len(raw) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


@torch.no_grad()
def evaluate(model, data: torch.Tensor, seq: int, windows: int) -> float:
    model.eval()
    total, count = 0.0, 0
    step = max(1, (len(data) - seq - 1) // windows)
    for start in range(0, len(data) - seq - 1, step)[:windows]:
        w = data[start : start + seq + 1].long()[None]
        loss = F.cross_entropy(model(w[:, :-1]).reshape(-1, 256), w[:, 1:].reshape(-1), reduction='sum')
        total += loss.item()
        count += seq
    model.train()
    return total / count


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument('--data', required=True)
    p.add_argument('--out', default='test/fixtures/trained/mamba2-shakespeare-tiny')
    p.add_argument('--d-model', type=int, default=64)
    p.add_argument('--layers', type=int, default=2)
    p.add_argument('--head-dim', type=int, default=16)
    p.add_argument('--d-state', type=int, default=16)
    p.add_argument('--seq', type=int, default=128)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--time-budget', type=float, default=420)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=1)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    raw = open(args.data, 'rb').read()
    data = torch.tensor(list(raw), dtype=torch.uint8)
    split = int(len(data) * 0.9)
    train, val = data[:split], data[split:]
    cfg = config(args)
    model = Mamba2LM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.95))
    start, step = time.time(), 0
    while time.time() - start < args.time_budget:
        frac = (time.time() - start) / args.time_budget
        for g in opt.param_groups:
            g['lr'] = args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        idx = torch.randint(0, len(train) - args.seq - 1, (args.batch,))
        w = torch.stack([train[i : i + args.seq + 1] for i in idx.tolist()]).long()
        loss = F.cross_entropy(model(w[:, :-1]).reshape(-1, 256), w[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 200 == 0:
            print(f'step {step} loss {loss.item():.3f} ({time.time() - start:.0f} s)', flush=True)
    val_loss = evaluate(model, val, args.seq, 64)
    print(f'steps {step}, validation loss {val_loss:.4f} nats a byte', flush=True)
    os.makedirs(args.out, exist_ok=True)
    tensors = {'backbone.embeddings.weight': model.embeddings.weight, 'backbone.norm_f.weight': model.norm_f.weight}
    for i, layer in enumerate(model.layers):
        pre = f'backbone.layers.{i}.'
        tensors[pre + 'norm.weight'] = layer.norm.weight
        for name, t in layer.mixer.named_parameters():
            tensors[pre + 'mixer.' + name] = t
    write_safetensors(os.path.join(args.out, 'model.safetensors'), tensors)
    with open(os.path.join(args.out, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)
        f.write('\n')
    # The held-out text the test scores (256 bytes) and this model's mean loss over its 255 next bytes.
    probe = bytes(val[:256].tolist())
    with torch.no_grad():
        w = val[:256].long()[None]
        probe_loss = F.cross_entropy(model.eval()(w[:, :-1]).reshape(-1, 256), w[:, 1:].reshape(-1)).item()
    with open(os.path.join(args.out, 'train.json'), 'w') as f:
        json.dump({'script': 'scripts/train/train_mamba2_tiny.py', 'args': vars(args) | {'data': os.path.basename(args.data)}, 'steps': step,
                   'validation_loss_nats_per_byte': val_loss, 'probe_text': probe.decode('latin-1'), 'probe_loss_nats_per_byte': probe_loss,
                   'torch': torch.__version__}, f, indent=2)
        f.write('\n')
    print(f'probe loss {probe_loss:.4f}; wrote {args.out}', flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
