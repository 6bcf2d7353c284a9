"""Small shared pieces of the two training scripts: seeding, the step budget, the LR schedule."""
from __future__ import annotations

import math
import os
import platform
import random
import sys
import time

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True  # training only; export_hf turns it off for its checks
        torch.backends.cudnn.allow_tf32 = True
        return torch.device("cuda")
    return torch.device("cpu")


def lr_at(step: int, max_steps: int, base: float, warmup: int, final_frac: float = 0.1) -> float:
    """Linear warm-up, then cosine down to final_frac·base at max_steps."""
    if step < warmup:
        return base * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * p)))


class StepBudget:
    """`--steps N` fixes the step count (exact re-run). Otherwise the count is chosen from the
    measured speed at step `probe` so that training ends near `seconds`; a hard stop at
    1.15 × seconds guards against a slower second half (e.g. GPU shared with another job)."""

    def __init__(self, steps: int | None, seconds: float, probe: int = 60):
        self.fixed = steps is not None
        self.max_steps = steps if steps is not None else 10**9
        self.seconds = seconds
        self.probe = probe
        self.t0 = time.time()
        self.t_probe_start = None

    def update(self, step: int) -> None:
        if self.fixed:
            return
        if step == 10:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t_probe_start = time.time()
        if step == self.probe:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            rate = (self.probe - 10) / (time.time() - self.t_probe_start)
            left = self.seconds - (time.time() - self.t0)
            self.max_steps = max(self.probe + 1, int(self.probe + 0.92 * left * rate))
            print(f"budget: {rate:.2f} steps/s measured -> max_steps = {self.max_steps}", flush=True)

    def done(self, step: int) -> bool:
        if step >= self.max_steps:
            return True
        if not self.fixed and time.time() - self.t0 > 1.15 * self.seconds:
            print(f"budget: hard time stop at step {step}", flush=True)
            return True
        return False

    def elapsed(self) -> float:
        return time.time() - self.t0


def environment() -> dict:
    import transformers

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    return {"device": dev, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def command_line() -> str:
    """The command that made this run, without --out (the outputs' usual place is the default)."""
    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if a == "--out":
            skip = True
            continue
        if a.startswith("--out="):
            continue
        args.append(a)
    return "python3 " + " ".join([os.path.relpath(sys.argv[0])] + args)
