"""Mamba-1 on the selective copying task of the Mamba paper (Gu & Dao 2023, §4.1.1).

    python3 scripts/train/train_selective_copy.py [--time-budget 300 | --steps N]

Layout of one sequence (seq_len = input_len + K tokens):
  positions 0 .. input_len-1   noise tokens (id 0), except K data tokens (ids 1..n_data) at K
                               distinct random positions (uniform, sorted);
  positions input_len .. end   K marker tokens (id n_data+1).
The model must output the data tokens in order at the marker positions: the argmax of the
logits at position input_len + j is the j-th data token. Only those K positions are trained.
Fresh random sequences every step (no fixed training set), so train and test are the same
distribution; the reported accuracy is on sequences from a separately seeded generator.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import StepBudget, command_line, environment, lr_at, pick_device, seed_everything  # noqa: E402
from mamba_torch import MambaLM, export_hf, hf_config_dict, write_json  # noqa: E402


class Task:
    def __init__(self, input_len: int, k: int, n_data: int):
        self.input_len, self.k, self.n_data = input_len, k, n_data
        self.noise, self.marker = 0, n_data + 1
        self.vocab = n_data + 2
        self.seq_len = input_len + k

    def batch(self, bs: int, gen: torch.Generator, dev):
        pos = torch.rand(bs, self.input_len, generator=gen, device=dev).argsort(dim=1)[:, : self.k]
        pos = pos.sort(dim=1).values
        vals = torch.randint(1, self.n_data + 1, (bs, self.k), generator=gen, device=dev)
        seq = torch.full((bs, self.seq_len), self.noise, dtype=torch.long, device=dev)
        seq.scatter_(1, pos, vals)
        seq[:, self.input_len :] = self.marker
        return seq, vals, pos


@torch.no_grad()
def accuracy(model, task: Task, n: int, gen: torch.Generator, dev, bs: int = 512) -> tuple[float, float]:
    model.eval()
    exact = tokens = 0
    for i in range(0, n, bs):
        seq, vals, _ = task.batch(min(bs, n - i), gen, dev)
        pred = model(seq)[:, task.input_len :].argmax(-1)
        ok = pred == vals
        exact += ok.all(dim=1).sum().item()
        tokens += ok.sum().item()
    model.train()
    return exact / n, tokens / (n * task.k)


@torch.no_grad()
def delta_stats(model, task: Task, gen: torch.Generator, dev, n: int = 1024, top: int = 8) -> dict:
    """Δ on data vs noise vs marker positions, per layer, over n fresh sequences.

    Per token t: ‖Δ_t‖₂ over the d_inner channels (the DeciMamba score), the plain mean over
    channels, and the median over channels; each averaged over all positions of a kind. Per
    channel: mean Δ over positions of a kind, and the ratio data/noise. focus_layer is the layer
    with the largest median-over-channels ratio data/noise (a few channels with large Δ on every
    noise token can dominate the L2 norm while most channels open on the data tokens)."""
    model.eval()
    kinds = ("data", "noise", "marker")
    acc = None
    for _ in range(0, n, 256):
        seq, _, _ = task.batch(256, gen, dev)
        taps: list = []
        model(seq, taps)
        masks = {"data": (seq >= 1) & (seq <= task.n_data), "noise": seq == task.noise, "marker": seq == task.marker}
        if acc is None:
            acc = [{k: {"norm": 0.0, "mean": 0.0, "median": 0.0, "count": 0, "per_channel": 0.0} for k in kinds}
                   for _ in taps]
        for li, t in enumerate(taps):
            d = t["delta"].float()  # [B, L, di]
            per_token = {"norm": d.norm(dim=-1), "mean": d.mean(dim=-1), "median": d.median(dim=-1).values}
            for k in kinds:
                m = masks[k]
                a = acc[li][k]
                for name, v in per_token.items():
                    a[name] += v[m].sum().item()
                a["count"] += int(m.sum().item())
                a["per_channel"] = a["per_channel"] + d[m].sum(dim=0)
    model.train()
    layers, channels = [], []
    for li, a in enumerate(acc):
        row = {"layer": li}
        for k in kinds:
            c = a[k]["count"]
            row[f"{k}_mean_norm"] = round(a[k]["norm"] / c, 5)
            row[f"{k}_mean"] = round(a[k]["mean"] / c, 6)
            row[f"{k}_median_over_channels"] = round(a[k]["median"] / c, 6)
        for name in ("mean_norm", "mean", "median_over_channels"):
            row[f"data_over_noise_{name}"] = round(row[f"data_{name}"] / row[f"noise_{name}"], 3)
        cd = a["data"]["per_channel"] / a["data"]["count"]
        cn = a["noise"]["per_channel"] / a["noise"]["count"]
        ratio = cd / cn.clamp_min(1e-30)
        row["channels"] = int(cd.numel())
        row["channels_data_above_noise"] = int((ratio > 1).sum())
        row["channels_ratio_above_2"] = int((ratio > 2).sum())
        row["channels_ratio_below_half"] = int((ratio < 0.5).sum())
        layers.append(row)
        # rank by ratio among channels whose Δ on data is large enough to matter (≥ 0.01), else all
        big = cd >= 0.01
        score = torch.where(big, ratio, ratio - 1e9) if int(big.sum()) >= top else ratio
        order = torch.argsort(score, descending=True)
        channels.append([{"channel": int(ch), "data_mean": round(float(cd[ch]), 6), "noise_mean": round(float(cn[ch]), 7),
                          "ratio": round(float(ratio[ch]), 2)} for ch in order[:top]])
    focus = max(layers, key=lambda r: r["data_over_noise_median_over_channels"])["layer"]
    return {"layers": layers, "focus_layer": focus, "focus_channels": channels[focus], "sequences": n,
            "definition": "per token: ‖Δ_t‖₂ over the d_inner channels (DeciMamba), the mean and the median over "
                          "channels, each averaged over all positions of a kind (data / noise / marker) in fresh "
                          "random sequences; per channel: mean Δ over positions of a kind, ratio data/noise. "
                          "focus_layer: largest data/noise ratio of the median over channels; focus_channels: the "
                          "channels of that layer with the largest ratio among those with mean Δ ≥ 0.01 on data"}


def look_at(stats: dict) -> str:
    f = stats["focus_layer"]
    row = stats["layers"][f]
    chans = ", ".join(str(c["channel"]) for c in stats["focus_channels"][:4])
    text = (f"Layer {f}: {row['channels_data_above_noise']} of its {row['channels']} channels take a larger step Δ on "
            f"the data tokens than on the noise ({row['channels_ratio_above_2']} more than twice as large; the "
            f"median over channels is {row['data_over_noise_median_over_channels']}× the noise's; most selective: "
            f"channels {chans}): the data tokens are written into the state, the noise is filtered and the state "
            f"passes through it. ")
    if row["data_over_noise_mean_norm"] < 1:
        text += (f"A few channels ({row['channels_ratio_below_half']}) do the opposite with large Δ, so the per-token "
                 f"‖Δ_t‖ is not higher on data here ({row['data_over_noise_mean_norm']}×): look at channels, not the "
                 f"norm. ")
    text += "At the markers, C reads the stored tokens back out in order."
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="resources/models/selective-copy")
    ap.add_argument("--input-len", type=int, default=240)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--n-data", type=int, default=16)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--d-state", type=int, default=16)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=None, help="fixed step count (default: fit --time-budget)")
    ap.add_argument("--schedule-steps", type=int, default=None,
                    help="horizon of the LR schedule (default: the step count); to repeat a run exactly")
    ap.add_argument("--time-budget", type=float, default=400.0)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--stop-at", type=float, default=0.998, help="stop early once eval exact accuracy reaches this")
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--init-from", default=None,
                    help="continue from a saved model folder (config.json + model.safetensors + studio.json); "
                         "a fresh optimizer and schedule, its studio.json's training kept as previous_stages")
    args = ap.parse_args()

    seed_everything(args.seed)
    dev = pick_device()
    task = Task(args.input_len, args.k, args.n_data)
    cfg = hf_config_dict(task.vocab, args.d_model, args.n_layer, d_state=args.d_state)
    model = MambaLM(cfg, dropout=0.0).to(dev)
    previous_stages = []
    if args.init_from:
        import json

        from safetensors.torch import load_file

        with open(os.path.join(args.init_from, "config.json")) as f:
            saved = json.load(f)
        for k in ("vocab_size", "hidden_size", "num_hidden_layers", "state_size"):
            assert saved[k] == cfg[k], f"--init-from {args.init_from}: {k} {saved[k]} != {cfg[k]}"
        missing, unexpected = model.load_state_dict(load_file(os.path.join(args.init_from, "model.safetensors")),
                                                    strict=False)
        assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
        sp = os.path.join(args.init_from, "studio.json")
        if os.path.exists(sp):
            with open(sp) as f:
                old = json.load(f)
            previous_stages = old["training"].pop("previous_stages", []) + [
                {**old["training"], "metrics": {k: old["metrics"].get(k) for k in
                                                ("test_exact_sequence_accuracy", "test_token_accuracy", "test_loss")}}]
        print(f"continuing from {args.init_from} ({len(previous_stages)} earlier stage(s))", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"task: seq_len {task.seq_len}, K {task.k}, vocab {task.vocab}; model {n_params} parameters", flush=True)
    opt = torch.optim.AdamW(model.param_groups(args.weight_decay), lr=args.lr, betas=(0.9, 0.95), fused=dev.type == "cuda")
    train_gen = torch.Generator(device=dev).manual_seed(args.seed)
    eval_gen = torch.Generator(device=dev).manual_seed(args.seed + 1)
    budget = StepBudget(args.steps, args.time_budget)
    history, recent = [], []
    step = 0
    stopped_early = False
    model.train()
    while not budget.done(step):
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, args.schedule_steps or budget.max_steps, args.lr, args.warmup)
        seq, vals, _ = task.batch(args.batch, train_gen, dev)
        logits = model(seq)[:, task.input_len :]
        loss = F.cross_entropy(logits.reshape(-1, task.vocab).float(), vals.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        recent.append(loss.detach())
        step += 1
        budget.update(step)
        if step % args.eval_every == 0 or budget.done(step):
            tl = torch.stack(recent[-50:]).mean().item()
            ex, tok = accuracy(model, task, 2048, eval_gen, dev)
            history.append({"step": step, "train_loss": round(tl, 5), "exact": round(ex, 4), "token": round(tok, 4),
                            "seconds": round(budget.elapsed(), 1)})
            print(f"step {step}/{budget.max_steps} loss {tl:.4f} exact {ex:.4f} token {tok:.4f} "
                  f"{budget.elapsed():.0f}s", flush=True)
            recent = recent[-50:]
            if args.steps is None and ex >= args.stop_at:
                stopped_early = True
                print(f"reached {ex:.4f} >= {args.stop_at}: stopping", flush=True)
                break
    train_seconds = budget.elapsed()
    model.eval()
    test_gen = torch.Generator(device=dev).manual_seed(args.seed + 2)
    exact, tok = accuracy(model, task, 10000, test_gen, dev)
    with torch.no_grad():
        seq, vals, _ = task.batch(1024, test_gen, dev)
        test_loss = F.cross_entropy(model(seq)[:, task.input_len :].reshape(-1, task.vocab).float(),
                                    vals.reshape(-1)).item()
    print(f"test (10000 fresh sequences): exact {exact:.4f}, token {tok:.4f}, loss {test_loss:.5f}", flush=True)
    stats = delta_stats(model, task, torch.Generator(device=dev).manual_seed(args.seed + 3), dev)
    for row in stats["layers"]:
        print(f"Δ layer {row['layer']}: ‖Δ‖ data {row['data_mean_norm']:.4f} noise {row['noise_mean_norm']:.4f} "
              f"marker {row['marker_mean_norm']:.4f} (data/noise {row['data_over_noise_mean_norm']}); mean Δ data "
              f"{row['data_mean']:.5f} noise {row['noise_mean']:.5f}; median over channels data/noise "
              f"{row['data_over_noise_median_over_channels']}; channels data>noise "
              f"{row['channels_data_above_noise']}/{row['channels']}", flush=True)
    print(f"focus layer {stats['focus_layer']}", flush=True)

    ex_gen = torch.Generator(device=dev).manual_seed(7)
    seq, vals, pos = task.batch(256, ex_gen, dev)
    export = export_hf(model, args.out, seq[:8])
    from transformers import MambaForCausalLM

    hf = MambaForCausalLM.from_pretrained(args.out).to(dev).eval()
    with torch.no_grad():
        hf_pred = hf(seq, use_cache=False).logits[:, task.input_len :].argmax(-1)
    hf_exact = (hf_pred == vals).all(dim=1).float().mean().item()
    print(f"transformers model, 256 sequences: exact {hf_exact:.4f}", flush=True)
    examples = []
    for i in range(3):
        examples.append({"ids": seq[i].tolist(), "data_positions": pos[i].tolist(), "expected": vals[i].tolist(),
                         "model_output": hf_pred[i].tolist()})

    letters = [chr(ord("A") + i) for i in range(task.n_data)]
    studio = {
        "format": "mamba-studio/model@1",
        "name": "selective-copy",
        "display_name": "Selective copying (Mamba-1)",
        "description": f"A {n_params / 1e3:.0f}k-parameter Mamba-1 ({args.n_layer} layers, d_model {args.d_model}) "
                       f"trained on the Mamba paper's selective copying task: remember the {task.k} data tokens "
                       f"scattered in {task.input_len} noise tokens and repeat them, in order, at the markers.",
        "architecture": "mamba1",
        "hf_class": "MambaForCausalLM",
        "tokenizer": {
            "kind": "selective-copy",
            "vocab_size": task.vocab,
            "noise_id": task.noise,
            "data_ids": list(range(1, task.n_data + 1)),
            "marker_id": task.marker,
            "labels": ["·"] + letters + ["?"],
            "label_meaning": "labels[id]: '·' noise, 'A'..'" + letters[-1] + "' data tokens 1.." + str(task.n_data)
                             + ", '?' marker",
        },
        "task": {
            "k": task.k,
            "n_data_values": task.n_data,
            "input_len": task.input_len,
            "seq_len": task.seq_len,
            "layout": f"positions 0..{task.input_len - 1}: noise (id {task.noise}) with {task.k} data tokens "
                      f"(ids 1..{task.n_data}, uniform, repeats allowed) at distinct uniformly random positions; "
                      f"positions {task.input_len}..{task.seq_len - 1}: {task.k} markers (id {task.marker})",
            "answer_positions": list(range(task.input_len, task.seq_len)),
            "answer": "argmax of the logits at position input_len + j is the j-th data token (in order of "
                      "position); the whole sequence is one prefill, nothing is generated",
        },
        "suggested_prompts": examples,
        "what_to_look_at": look_at(stats),
        "delta_stats": stats["layers"],
        "focus_layer": stats["focus_layer"],
        "focus_channels": stats["focus_channels"],
        "delta_stats_definition": stats["definition"],
        "delta_stats_made_by": f"scripts/train/train_selective_copy.py after training ({stats['sequences']} sequences)",
        "metrics": {
            "test_exact_sequence_accuracy": round(exact, 5),
            "test_token_accuracy": round(tok, 5),
            "test_sequences": 10000,
            "test_loss": round(test_loss, 6),
            "final_train_loss": history[-1]["train_loss"] if history else None,
            "transformers_exact_on_256": round(hf_exact, 5),
            "target_exact_sequence_accuracy": args.target,
            "target_met": exact >= args.target,
            "test_definition": "fresh random sequences of the training length from a separately seeded "
                               "generator; exact = all K answers right",
            **export,
        },
        "training": {
            "steps": step,
            "stopped_early": stopped_early,
            "seconds": round(train_seconds, 1),
            "seed": args.seed,
            "batch": args.batch, "lr": args.lr, "warmup": args.warmup, "weight_decay": args.weight_decay,
            "optimizer": "AdamW(0.9, 0.95), clip 1.0", "schedule": "linear warm-up, cosine to 10%",
            "loss": "cross-entropy on the K marker positions only",
            "parameters": n_params,
            "model_file_bytes": os.path.getsize(os.path.join(args.out, "model.safetensors")),
            "history": history,
            "init_from": args.init_from,
            "previous_stages": previous_stages,
            "total_steps_all_stages": step + sum(st["steps"] for st in previous_stages),
            "total_seconds_all_stages": round(train_seconds + sum(st["seconds"] for st in previous_stages), 1),
            "command": command_line(),
            "schedule_steps": args.schedule_steps or budget.max_steps,
            "repeat_exactly": command_line() if args.steps is not None
            else f"{command_line()} --steps {step} --schedule-steps {budget.max_steps}",
            **environment(),
        },
    }
    write_json(os.path.join(args.out, "studio.json"), studio)
    print(f"RESULT selective-copy exact={exact:.4f} token={tok:.4f} steps={step} seconds={train_seconds:.0f} "
          f"focus_layer={stats['focus_layer']} target_met={exact >= args.target}", flush=True)


if __name__ == "__main__":
    main()
