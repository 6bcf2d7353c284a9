"""Recompute the Δ-by-byte-class statistics of a saved shakespeare-byte model into its studio.json.

    python3 scripts/train/analyze_shakespeare.py --data ../shared/data/tinyshakespeare.txt \
        [--model resources/models/shakespeare-byte]

CPU is fine (seconds). Uses the same delta_by_class() as the training script, which writes
these fields itself after training; this refreshes them without retraining.
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
from train_shakespeare import delta_by_class, look_at  # noqa: E402

KEYS = ("vocab_size", "hidden_size", "state_size", "num_hidden_layers", "expand", "conv_kernel", "time_step_rank",
        "layer_norm_epsilon", "use_bias", "use_conv_bias")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="resources/models/shakespeare-byte")
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = {k: v for k, v in json.load(f).items() if k in KEYS}
    model = MambaLM(cfg).to(dev)
    missing, unexpected = model.load_state_dict(load_file(os.path.join(args.model, "model.safetensors")), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    raw = open(args.data, "rb").read()
    val = torch.tensor(list(raw[int(0.9 * len(raw)):]), dtype=torch.uint8, device=dev)
    stats = delta_by_class(model, val)
    for row in stats["layers"]:
        print(json.dumps(row))
    with open(os.path.join(args.model, "studio.json")) as f:
        studio = json.load(f)
    studio.update({
        "what_to_look_at": look_at(stats),
        "delta_by_byte_class": stats["layers"],
        "delta_by_byte_class_definition": stats["definition"],
        "delta_stats_made_by": f"python3 scripts/train/analyze_shakespeare.py ({dev.type}, torch {torch.__version__})",
    })
    write_json(os.path.join(args.model, "studio.json"), studio)
    print(look_at(stats))


if __name__ == "__main__":
    main()
