"""Would the SSD's chunk matrix products keep a trained Mamba-2's logits in int8? (issue 19 item 1:
the SSD's chunk products on the tensor cores, which take int8 only through WebGPU here.)

    /usr/bin/python3 scripts/train/ssd_int8_accuracy.py [--model test/fixtures/trained/mamba2-shakespeare-tiny]
        [--data ../shared/data/tinyshakespeare.txt]

Loads the trained byte-level Mamba-2 (scripts/train/train_mamba2_tiny.py) into that script's torch
model and runs held-out text through it three ways: fp32; with the four chunk products of the SSD
(C·Bᵀ, (C·Bᵀ ∘ L)·X, Bᵀ·(decay·X), C·states) on int8 codes, each operand quantized per row along the
product's K with one absmax scale (as the studio's int8 projections, without the rotation) and
the sums kept exact; and with the projections (in_proj, out_proj) likewise int8 for comparison.
Prints the relative logit error (‖Δ‖ / ‖fp32‖ over every position) and the mean loss of each, and
how often the greedy next byte agrees with fp32's.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_mamba2_tiny as t2  # noqa: E402


def fake_int8(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x with each row along `dim` coded to int8 at 127 / its absmax and decoded (exact sums after)."""
    scale = x.abs().amax(dim=dim, keepdim=True).clamp(min=1e-30) / 127.0
    return torch.clamp(torch.round(x / scale), -127, 127) * scale


class Int8Linear(torch.nn.Module):
    def __init__(self, lin: torch.nn.Linear):
        super().__init__()
        self.lin = lin

    def forward(self, x):
        return fake_int8(x, -1) @ fake_int8(self.lin.weight, -1).t()


def load(model_dir: str) -> t2.Mamba2LM:
    cfg = json.load(open(os.path.join(model_dir, 'config.json')))
    model = t2.Mamba2LM(cfg)
    raw = open(os.path.join(model_dir, 'model.safetensors'), 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    tensors = {k: torch.from_numpy(np.frombuffer(raw[8 + n + v['data_offsets'][0] : 8 + n + v['data_offsets'][1]], dtype=np.float32).reshape(v['shape']).copy())
               for k, v in header.items() if k != '__metadata__'}
    state = {k.removeprefix('backbone.'): v for k, v in tensors.items()}
    model.load_state_dict(state)
    return model.eval()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument('--model', default='test/fixtures/trained/mamba2-shakespeare-tiny')
    p.add_argument('--data', default='../shared/data/tinyshakespeare.txt')
    p.add_argument('--tokens', type=int, default=1024)
    p.add_argument('--windows', type=int, default=8)
    args = p.parse_args()
    torch.manual_seed(0)
    model = load(args.model)
    raw = open(args.data, 'rb').read()
    val = torch.tensor(list(raw[int(len(raw) * 0.9) :]), dtype=torch.long)
    step = (len(val) - args.tokens - 1) // args.windows
    wins = torch.stack([val[i * step : i * step + args.tokens + 1] for i in range(args.windows)])
    ids, targets = wins[:, :-1], wins[:, 1:]

    def run() -> torch.Tensor:
        with torch.no_grad():
            return model(ids)

    ref = run()
    rows = []

    def report(name: str, logits: torch.Tensor) -> None:
        err = ((logits - ref).norm() / ref.norm()).item()
        loss = F.cross_entropy(logits.reshape(-1, 256), targets.reshape(-1)).item()
        agree = (logits.argmax(-1) == ref.argmax(-1)).float().mean().item()
        rows.append((name, err, loss, agree))
        print(f'{name:34s} relative logit error {err:.2e}  loss {loss:.4f} nats a byte  greedy agreement {agree * 100:.2f} %', flush=True)

    report('fp32', ref)
    plain = t2.ssd
    ssd_int8 = functools.partial(plain, code=fake_int8)  # the SSD's four chunk products on int8 codes
    t2.ssd = ssd_int8
    report('SSD chunk products int8', run())
    t2.ssd = plain
    for layer in model.layers:
        layer.mixer.in_proj = Int8Linear(layer.mixer.in_proj)
        layer.mixer.out_proj = Int8Linear(layer.mixer.out_proj)
    report('in_proj, out_proj int8', run())
    t2.ssd = ssd_int8
    report('both', run())
    t2.ssd = plain
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
