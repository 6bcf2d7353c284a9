"""Recompute the Δ statistics of a saved selective-copy model and write them into its studio.json.

    python3 scripts/train/analyze_selective_copy.py [--model resources/models/selective-copy]

Runs on the CPU in about a minute (or on a GPU). Uses the same delta_stats() as the training
script, so a fresh training run writes the same fields; this exists to refresh them without
retraining. Also re-checks the exact-sequence accuracy on 1024 fresh sequences.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_torch import MambaLM, write_json  # noqa: E402
from train_selective_copy import Task, accuracy, delta_stats, look_at  # noqa: E402

KEYS = ("vocab_size", "hidden_size", "state_size", "num_hidden_layers", "expand", "conv_kernel", "time_step_rank",
        "layer_norm_epsilon", "use_bias", "use_conv_bias")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resources/models/selective-copy")
    ap.add_argument("--seed", type=int, default=4324)
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = {k: v for k, v in json.load(f).items() if k in KEYS}
    with open(os.path.join(args.model, "studio.json")) as f:
        studio = json.load(f)
    t = studio["task"]
    task = Task(t["input_len"], t["k"], t["n_data_values"])
    model = MambaLM(cfg).to(dev)
    missing, unexpected = model.load_state_dict(load_file(os.path.join(args.model, "model.safetensors")), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    model.eval()
    exact, tok = accuracy(model, task, 1024, torch.Generator(device=dev).manual_seed(args.seed + 1), dev)
    print(f"check: exact {exact:.4f}, token {tok:.4f} on 1024 fresh sequences")
    stats = delta_stats(model, task, torch.Generator(device=dev).manual_seed(args.seed), dev)
    for row in stats["layers"]:
        print(json.dumps(row))
    print("focus layer", stats["focus_layer"], "channels", stats["focus_channels"])
    studio.update({
        "what_to_look_at": look_at(stats),
        "delta_stats": stats["layers"],
        "focus_layer": stats["focus_layer"],
        "focus_channels": stats["focus_channels"],
        "delta_stats_definition": stats["definition"],
        "delta_stats_made_by": f"python3 scripts/train/analyze_selective_copy.py (seed {args.seed}, {dev.type}, "
                               f"torch {torch.__version__}, {stats['sequences']} sequences)",
    })
    write_json(os.path.join(args.model, "studio.json"), studio)
    print(look_at(stats))


if __name__ == "__main__":
    main()
