"""Golden fixtures from transformers' Mamba / Falcon-Mamba / Mamba-2 (plain PyTorch path, float32, CPU).

    python3 scripts/golden/make_golden.py [--out test/fixtures/golden] [--only CASE ...] [--cases A,B]

--only and --cases (comma-separated) pick cases by name (default: all); only those folders are
(re)written, and manifest.json in --out keeps the other cases it already lists. For each case it
builds a tiny MambaForCausalLM / FalconMambaForCausalLM / Mamba2ForCausalLM with random weights,
perturbs them so that every term matters, saves it with `save_pretrained`, runs one forward
pass with forward hooks, runs greedy `generate`, and writes `golden.safetensors`. Then it
checks everything against scripts/golden/ref_numpy.py (an independent float64 implementation
of docs/ARCHITECTURE.md, reading only the saved files) and asserts that nothing is degenerate.
test/fixtures/golden/README.md documents the files; keep the two in step.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import Mamba2Config, Mamba2ForCausalLM, MambaConfig, MambaForCausalLM  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_numpy  # noqa: E402

FORMAT = "mamba-studio/golden@1"
N_GENERATE = 24
TOL_REL = 1e-4  # HF float32 vs our float64 reference, ‖a−b‖/‖b‖ per tensor

# Mamba-1 cases: MambaConfig kwargs. Mamba-2 cases: Mamba2Config kwargs.
# Falcon-Mamba cases: FalconMambaConfig kwargs (arch "falcon_mamba": Mamba-1 plus a weightless RMS norm on
# dt_r, B and C after x_proj, eps mixer_rms_eps).
NO_SPECIAL = dict(bos_token_id=None, eos_token_id=None, pad_token_id=None)
CASES = [
    dict(
        name="mamba1-tied",
        arch="mamba1",
        seed=1001,
        seq_len=128,
        about="Mamba-1, tied embeddings, defaults otherwise (d_state 16, dt_rank auto = ceil(48/16) = 3)",
        config=dict(vocab_size=256, hidden_size=48, state_size=16, num_hidden_layers=2, expand=2, conv_kernel=4,
                    tie_word_embeddings=True, **NO_SPECIAL),
    ),
    dict(
        name="mamba1-bias-untied",
        arch="mamba1",
        seed=1002,
        seq_len=96,
        about="Mamba-1, use_bias true (in_proj/out_proj biases), untied lm_head, 3 layers",
        config=dict(vocab_size=320, hidden_size=64, state_size=16, num_hidden_layers=3, expand=2, conv_kernel=4,
                    use_bias=True, tie_word_embeddings=False, **NO_SPECIAL),
    ),
    dict(
        name="mamba1-odd",
        arch="mamba1",
        seed=1003,
        seq_len=97,
        about="Mamba-1, odd sizes: vocab 251 (prime, not a multiple of 8), d_model 40, d_state 12, "
              "time_step_rank 5 (auto would be 3), no conv bias, sequence length 97 (prime)",
        config=dict(vocab_size=251, hidden_size=40, state_size=12, num_hidden_layers=2, expand=2, conv_kernel=4,
                    time_step_rank=5, use_conv_bias=False, tie_word_embeddings=True, **NO_SPECIAL),
    ),
    dict(
        name="falcon-mamba-tiny",
        arch="falcon_mamba",
        seed=3001,
        seq_len=97,
        about="Falcon-Mamba, untied lm_head (like falcon-mamba-7b), 3 layers, d_model 48, d_state 16, vocab 300; "
              "mixer_rms_eps 0.05 (≠ layer_norm_epsilon 1e-5, large enough that using the wrong eps shows)",
        config=dict(vocab_size=300, hidden_size=48, state_size=16, num_hidden_layers=3, expand=2, conv_kernel=4,
                    tie_word_embeddings=False, mixer_rms_eps=0.05, layer_norm_epsilon=1e-5, **NO_SPECIAL),
    ),
    dict(
        name="falcon-mamba-odd",
        arch="falcon_mamba",
        seed=3002,
        seq_len=89,
        about="Falcon-Mamba, odd sizes: vocab 251, d_model 40, d_state 12, time_step_rank 5, no conv bias, tied, "
              "2 layers, T = 89; mixer_rms_eps = layer_norm_epsilon = 0.02 (llama.cpp's GGUF runs the mixer norm "
              "with the layer norm eps, so its GGUF form is exact)",
        config=dict(vocab_size=251, hidden_size=40, state_size=12, num_hidden_layers=2, expand=2, conv_kernel=4,
                    time_step_rank=5, use_conv_bias=False, tie_word_embeddings=True, mixer_rms_eps=0.02,
                    layer_norm_epsilon=0.02, **NO_SPECIAL),
    ),
    dict(
        name="mamba2-groups",
        arch="mamba2",
        seed=2001,
        seq_len=150,
        about="Mamba-2, n_groups 2 (4 heads per group), chunk_size 32 so the 150 tokens span 5 chunks "
              "(the last one partial), untied lm_head",
        config=dict(vocab_size=256, hidden_size=64, num_heads=8, head_dim=16, state_size=16, n_groups=2,
                    num_hidden_layers=2, expand=2, conv_kernel=4, chunk_size=32, tie_word_embeddings=False,
                    **NO_SPECIAL),
    ),
    dict(
        name="mamba2-one-group",
        arch="mamba2",
        seed=2002,
        seq_len=200,
        about="Mamba-2, one group, head_dim 24, d_state 32, chunk_size 64 (200 tokens: 4 chunks), tied "
              "embeddings, vocab 300",
        config=dict(vocab_size=300, hidden_size=48, num_heads=4, head_dim=24, state_size=32, n_groups=1,
                    num_hidden_layers=2, expand=2, conv_kernel=4, chunk_size=64, tie_word_embeddings=True,
                    **NO_SPECIAL),
    ),
    dict(
        name="mamba2-8groups",
        arch="mamba2",
        seed=2003,
        seq_len=130,
        about="Mamba-2 with 8 groups as Mamba-Codestral-7B has them (16 heads × head_dim 8, 2 heads per "
              "group, d_state 16, so B and C are 8 × 16 = 128 wide), chunk_size 32 (130 tokens: 5 chunks, the "
              "last partial), untied lm_head; transformers normalizes the gated RMSNorm over all of d_inner",
        config=dict(vocab_size=272, hidden_size=64, num_heads=16, head_dim=8, state_size=16, n_groups=8,
                    num_hidden_layers=2, expand=2, conv_kernel=4, chunk_size=32, tie_word_embeddings=False,
                    **NO_SPECIAL),
    ),
]


def inv_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


def log_uniform(g: torch.Generator, shape, lo: float, hi: float) -> torch.Tensor:
    return torch.exp(torch.rand(shape, generator=g) * (math.log(hi) - math.log(lo)) + math.log(lo))


def uniform(g: torch.Generator, shape, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(shape, generator=g) * (hi - lo) + lo


@torch.no_grad()
def perturb(model: torch.nn.Module, arch: str, g: torch.Generator) -> None:
    """Replace HF's init (tiny Δ, A = 1..N, D = 1, unit norms) by values where every term matters."""
    cfg = model.config
    d = cfg.hidden_size
    sd = dict(model.named_parameters())

    def randn(shape, std):
        return torch.randn(shape, generator=g) * std

    sd["backbone.embeddings.weight"].copy_(randn(sd["backbone.embeddings.weight"].shape, 0.3))
    sd["backbone.norm_f.weight"].copy_(uniform(g, (d,), 0.6, 1.4))
    if "lm_head.weight" in sd and not cfg.tie_word_embeddings:
        sd["lm_head.weight"].copy_(randn(sd["lm_head.weight"].shape, 2.0 / math.sqrt(d)))
    for i in range(cfg.num_hidden_layers):
        p = f"backbone.layers.{i}."
        sd[p + "norm.weight"].copy_(uniform(g, (d,), 0.6, 1.4))
        w = sd[p + "mixer.in_proj.weight"]
        w.copy_(randn(w.shape, 1.0 / math.sqrt(d)))
        w = sd[p + "mixer.conv1d.weight"]
        w.copy_(uniform(g, w.shape, -0.7, 0.7))
        if p + "mixer.conv1d.bias" in sd:
            sd[p + "mixer.conv1d.bias"].copy_(randn(sd[p + "mixer.conv1d.bias"].shape, 0.2))
        w = sd[p + "mixer.out_proj.weight"]
        w.copy_(randn(w.shape, 2.5 / math.sqrt(w.shape[1])))
        for b in ("in_proj.bias", "out_proj.bias"):
            if p + "mixer." + b in sd:
                sd[p + "mixer." + b].copy_(randn(sd[p + "mixer." + b].shape, 0.2))
        if arch in ("mamba1", "falcon_mamba"):
            di, n, r = cfg.intermediate_size, cfg.state_size, int(cfg.time_step_rank)
            sd[p + "mixer.x_proj.weight"].copy_(randn((r + 2 * n, di), 1.2 / math.sqrt(di)))
            sd[p + "mixer.dt_proj.weight"].copy_(randn((di, r), 1.6 / math.sqrt(r)))
            sd[p + "mixer.dt_proj.bias"].copy_(inv_softplus(log_uniform(g, (di,), 2e-3, 0.3)))
            sd[p + "mixer.A_log"].copy_(torch.log(uniform(g, (di, n), 0.3, 8.0)))
            sd[p + "mixer.D"].copy_(uniform(g, (di,), -1.0, 1.5))
        else:
            nh = cfg.num_heads
            # dt rows of in_proj (the last num_heads outputs): a wider spread for an input-dependent Δ
            w = sd[p + "mixer.in_proj.weight"]
            w[-nh:].copy_(randn((nh, d), 1.5 / math.sqrt(d)))
            # few heads: spread the base Δ geometrically over 3e-3..0.6 (in a random order) rather than by chance
            base = torch.exp(torch.linspace(math.log(3e-3), math.log(0.6), nh))[torch.randperm(nh, generator=g)]
            sd[p + "mixer.dt_bias"].copy_(inv_softplus(base))
            sd[p + "mixer.A_log"].copy_(torch.log(uniform(g, (nh,), 0.3, 8.0)))
            sd[p + "mixer.D"].copy_(uniform(g, (nh,), -1.0, 1.5))
            sd[p + "mixer.norm.weight"].copy_(uniform(g, sd[p + "mixer.norm.weight"].shape, 0.6, 1.4))


def weightless_rms(v: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' falcon_mamba rms_forward: v·rsqrt(mean(v²) + eps) over the last axis, in float32."""
    dtype = v.dtype
    v = v.to(torch.float32)
    return (v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps)).to(dtype)


def capture(model, arch: str, ids: torch.Tensor) -> tuple[dict[str, torch.Tensor], object]:
    """One forward pass (no cache) with forward hooks. Returns taps [T, ...] (batch dim dropped)."""
    taps: dict[str, torch.Tensor] = {}
    hooks = []
    emb = model.backbone.embeddings
    hooks.append(emb.register_forward_hook(lambda m, inp, out: taps.__setitem__("embeddings", out[0].detach().clone())))
    for i, layer in enumerate(model.backbone.layers):
        mixer = layer.mixer

        def out_pre(m, inp, i=i):
            taps[f"layers.{i}.out_proj_in"] = inp[0][0].detach().clone()

        hooks.append(mixer.out_proj.register_forward_pre_hook(out_pre))
        if arch in ("mamba1", "falcon_mamba"):
            # x_proj IS called as a module: its input is x after conv + SiLU, its output [dt_r, B, C].
            def xproj_hook(m, inp, out, i=i, mixer=mixer):
                x = inp[0]
                r, n = mixer.time_step_rank, mixer.ssm_state_size
                dt_r, b_in, c_out = torch.split(out, [r, n, n], dim=-1)
                if arch == "falcon_mamba":
                    # Falcon-Mamba normalizes each part (weightless RMS norm in float32, eps mixer_rms_eps)
                    # before dt_proj and the scan; recomputed with the same torch ops as transformers' rms_forward.
                    dt_r, b_in, c_out = (weightless_rms(v, mixer.rms_eps) for v in (dt_r, b_in, c_out))
                taps[f"layers.{i}.x"] = x[0].detach().clone()
                taps[f"layers.{i}.B"] = b_in[0].detach().clone()
                taps[f"layers.{i}.C"] = c_out[0].detach().clone()
                # Mamba: dt_proj is NOT called as a module (HF multiplies by dt_proj.weight directly and adds the
                # bias inside the scan), so Δ is recomputed here with the same torch ops and the module's weights
                # (Falcon-Mamba's plain path calls dt_proj on the normalized dt_r: the same product).
                dt = mixer.dt_proj.weight @ dt_r.transpose(1, 2)  # [1, d_inner, T]
                dt = dt + mixer.dt_proj.bias.float()[..., None]
                taps[f"layers.{i}.delta"] = F.softplus(dt)[0].transpose(0, 1).detach().clone()

            hooks.append(mixer.x_proj.register_forward_hook(xproj_hook))
        else:
            # in_proj IS called; conv1d is NOT (HF calls F.conv1d with conv1d.weight), nor is anything
            # between the conv and the scan, so x/B/C/Δ are recomputed from in_proj's output with the same ops.
            def inproj_hook(m, inp, out, i=i, mixer=mixer):
                di, cd, nh = mixer.intermediate_size, mixer.conv_dim, mixer.num_heads
                gn = mixer.n_groups * mixer.ssm_state_size
                z, xbc, dt = out.split([di, cd, nh], dim=-1)
                t_len = xbc.shape[1]
                xbc = F.conv1d(xbc.transpose(1, 2), mixer.conv1d.weight, mixer.conv1d.bias,
                               padding=mixer.conv_kernel_size - 1, groups=cd)[..., :t_len]
                xbc = F.silu(xbc).transpose(1, 2)
                x, b_in, c_out = torch.split(xbc, [di, gn, gn], dim=-1)
                taps[f"layers.{i}.x"] = x[0].detach().clone()
                taps[f"layers.{i}.B"] = b_in[0].detach().clone()
                taps[f"layers.{i}.C"] = c_out[0].detach().clone()
                delta = F.softplus(dt + mixer.dt_bias)
                delta = torch.clamp(delta, mixer.time_step_limit[0], mixer.time_step_limit[1])
                taps[f"layers.{i}.delta"] = delta[0].detach().clone()

            hooks.append(mixer.in_proj.register_forward_hook(inproj_hook))

            # mixer.norm IS called: norm(scan_output, gate). Its first input is y, the scan output incl. D·x.
            def norm_hook(m, inp, out, i=i):
                taps[f"layers.{i}.y"] = inp[0][0].detach().clone()

            hooks.append(mixer.norm.register_forward_hook(norm_hook))
    try:
        out = model(ids[None], output_hidden_states=True, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return taps, out


def describe_taps(arch: str, cfg) -> dict[str, str]:
    di = int(cfg.expand * cfg.hidden_size)
    if arch == "falcon_mamba":
        taps = describe_taps("mamba1", cfg)
        norm = (f"after Falcon-Mamba's weightless RMS norm (eps mixer_rms_eps = {cfg.mixer_rms_eps:g}, float32), "
                "RECOMPUTED from the hooked x_proj output with transformers' rms_forward ops: as the scan uses it")
        taps["layers.i.B"] = f"float32 [T, {cfg.state_size}]: B {norm}"
        taps["layers.i.C"] = f"float32 [T, {cfg.state_size}]: C {norm}"
        taps["layers.i.delta"] = (f"float32 [T, {di}]: Δ = softplus(dt_proj.weight @ rms(dt_r) + dt_proj.bias), dt_r "
                                  "normalized like B, RECOMPUTED from the hooked x_proj output with the module's weights")
        return taps
    if arch == "mamba1":
        return {
            "input_ids": "int32 [T]: the tokens of the forward pass (batch of one)",
            "logits": f"float32 [T, {cfg.vocab_size}]: lm_head output at every position",
            "embeddings": f"float32 [T, {cfg.hidden_size}]: backbone.embeddings output (forward hook); "
                          "not part of HF's hidden_states",
            "hidden_states.k": "float32 [T, d_model]: HF output_hidden_states[k]; k < n_layer: residual stream "
                               "after block k (block input + mixer output); k = n_layer: after norm_f",
            "layers.i.x": f"float32 [T, {di}]: x after causal conv1d + SiLU (input of x_proj, forward hook)",
            "layers.i.delta": f"float32 [T, {di}]: Δ = softplus(dt_proj.weight @ dt_r + dt_proj.bias), RECOMPUTED "
                              "from the hooked x_proj output with the module's weights (HF does not call dt_proj)",
            "layers.i.B": f"float32 [T, {cfg.state_size}]: B from x_proj (forward hook)",
            "layers.i.C": f"float32 [T, {cfg.state_size}]: C from x_proj (forward hook)",
            "layers.i.out_proj_in": f"float32 [T, {di}]: out_proj input = y * silu(z) (forward pre-hook)",
            "generate.prompt_ids": "int32 [P]: the prompt given to generate (here = input_ids)",
            "generated_ids": f"int32 [{N_GENERATE}]: greedy continuation, new tokens only",
            "generated_logits": f"float32 [{N_GENERATE}, V]: the logits each new token was chosen from "
                                "(generate(output_logits=True)); row 0 = prefill's last row, rows >= 1 from the "
                                "cached step path",
        }
    gn = cfg.n_groups * cfg.state_size
    return {
        "input_ids": "int32 [T]: the tokens of the forward pass (batch of one)",
        "logits": f"float32 [T, {cfg.vocab_size}]: lm_head output at every position",
        "embeddings": f"float32 [T, {cfg.hidden_size}]: backbone.embeddings output (forward hook); "
                      "not part of HF's hidden_states",
        "hidden_states.k": "float32 [T, d_model]: HF output_hidden_states[k]; k < n_layer: residual stream "
                           "after block k; k = n_layer: after norm_f",
        "layers.i.x": f"float32 [T, {di}]: x after causal conv1d + SiLU, RECOMPUTED from the hooked in_proj "
                      "output with conv1d's weights (HF calls F.conv1d, not the module)",
        "layers.i.delta": f"float32 [T, {cfg.num_heads}]: Δ = clamp(softplus(dt + dt_bias), time_step_limit), "
                          "RECOMPUTED from the hooked in_proj output",
        "layers.i.B": f"float32 [T, {gn}]: B after conv + SiLU, groups concatenated in order "
                      f"(group g = columns g*{cfg.state_size}..), RECOMPUTED like x",
        "layers.i.C": f"float32 [T, {gn}]: C after conv + SiLU, groups concatenated, RECOMPUTED like x",
        "layers.i.y": f"float32 [T, {di}]: scan output y = state·C + D·x, before gate and norm "
                      "(input of mixer.norm, forward hook)",
        "layers.i.out_proj_in": f"float32 [T, {di}]: out_proj input = RMSNormGated(y, z) (forward pre-hook); "
                                "HF normalizes over all of d_inner, not per group",
        "generate.prompt_ids": "int32 [P]: the prompt given to generate (here = input_ids)",
        "generated_ids": f"int32 [{N_GENERATE}]: greedy continuation, new tokens only",
        "generated_logits": f"float32 [{N_GENERATE}, V]: the logits each new token was chosen from; row 0 from "
                            "the chunked prefill, rows >= 1 from the cached step path",
    }


def make_case(case: dict, out_root: str) -> dict:
    t0 = time.time()
    arch = case["arch"]
    folder = os.path.join(out_root, case["name"])
    last_problem = None
    for attempt in range(6):
        seed = case["seed"] + 100 * attempt
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        if arch == "mamba1":
            cfg = MambaConfig(**case["config"])
            model = MambaForCausalLM(cfg)
        elif arch == "falcon_mamba":
            from transformers import FalconMambaConfig, FalconMambaForCausalLM

            cfg = FalconMambaConfig(**case["config"])
            model = FalconMambaForCausalLM(cfg)
        else:
            cfg = Mamba2Config(**case["config"])
            model = Mamba2ForCausalLM(cfg)
        model = model.float().eval()
        perturb(model, arch, g)
        ids = torch.randint(0, cfg.vocab_size, (case["seq_len"],), generator=g)
        with torch.no_grad():
            taps, out = capture(model, arch, ids)
            gen = model.generate(ids[None], max_new_tokens=N_GENERATE, do_sample=False, use_cache=True,
                                 return_dict_in_generate=True, output_logits=True)
        generated = gen.sequences[0, len(ids):]
        gen_logits = torch.stack([lg[0] for lg in gen.logits]).float()
        problem = degenerate(arch, cfg, ids, out.logits[0], taps, generated, gen_logits)
        if problem is None:
            break
        last_problem = problem
        print(f"  {case['name']}: seed {seed} rejected: {problem}")
    else:
        raise SystemExit(f"{case['name']}: no acceptable seed ({last_problem})")

    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    model.save_pretrained(folder)  # config.json + model.safetensors, exactly as transformers writes them
    for f in os.listdir(folder):
        if f not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(folder, f))  # generation_config.json: not part of the fixture

    n_layer = cfg.num_hidden_layers
    hs = out.hidden_states
    assert len(hs) == n_layer + 1, f"expected {n_layer + 1} hidden states, got {len(hs)}"
    tensors: dict[str, torch.Tensor] = {
        "input_ids": ids.to(torch.int32),
        "logits": out.logits[0].float(),
        "embeddings": taps["embeddings"],
    }
    for k, h in enumerate(hs):
        tensors[f"hidden_states.{k}"] = h[0].float()
    names = ["x", "delta", "B", "C", "out_proj_in"] + (["y"] if arch == "mamba2" else [])
    for i in range(n_layer):
        for nm in names:
            tensors[f"layers.{i}.{nm}"] = taps[f"layers.{i}.{nm}"].float()
    tensors["generate.prompt_ids"] = ids.to(torch.int32)
    tensors["generated_ids"] = generated.to(torch.int32)
    tensors["generated_logits"] = gen_logits
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}

    # ---- self-check against the independent float64 reference, from the SAVED files only
    rcfg, rw = ref_numpy.load_model(folder)
    ids_np = ids.numpy()
    fwd = ref_numpy.mamba2_forward if arch == "mamba2" else ref_numpy.mamba1_forward
    if arch == "falcon_mamba":
        assert rcfg.get("model_type") == "falcon_mamba", f"saved config has model_type {rcfg.get('model_type')}"
        assert ref_numpy.mixer_rms_eps(rcfg) == case["config"]["mixer_rms_eps"], "saved mixer_rms_eps differs"
    ref = fwd(rcfg, rw, ids_np)
    errors: dict[str, float] = {}
    for k, v in ref.items():
        if k in tensors:
            errors[k] = ref_numpy.rel_err(tensors[k].numpy(), v)
    worst = max(errors, key=errors.get)
    print(f"  {case['name']}: self-check worst rel err {errors[worst]:.2e} ({worst}); logits {errors['logits']:.2e}")
    assert errors["logits"] < TOL_REL, f"logits differ from the float64 reference: {errors['logits']}"
    for k, e in errors.items():
        assert e < TOL_REL, f"{k} differs from the float64 reference: {e}"
    extra = {}
    if arch == "mamba2":
        per_group = fwd(rcfg, rw, ids_np, norm_groups="per_group")
        extra["logits_rel_diff_if_norm_per_group"] = ref_numpy.rel_err(per_group["logits"], ref["logits"])
        print(f"  {case['name']}: per-group gated norm would change logits by {extra['logits_rel_diff_if_norm_per_group']:.2e}")
    if arch == "falcon_mamba":
        # the norm matters (without it, or with the other eps, the logits would differ this much)
        plain = fwd(rcfg, rw, ids_np, dt_b_c_rms=None)
        extra["logits_rel_diff_if_no_mixer_norm"] = ref_numpy.rel_err(plain["logits"], ref["logits"])
        other_eps = rcfg["layer_norm_epsilon"] if rcfg["layer_norm_epsilon"] != rcfg["mixer_rms_eps"] else 1e-6
        other = fwd(rcfg, rw, ids_np, dt_b_c_rms=other_eps)
        extra[f"logits_rel_diff_if_mixer_eps_{other_eps:g}"] = ref_numpy.rel_err(other["logits"], ref["logits"])
        print(f"  {case['name']}: without the mixer norm the logits would change by "
              f"{extra['logits_rel_diff_if_no_mixer_norm']:.2e}; with eps {other_eps:g} by "
              f"{extra[f'logits_rel_diff_if_mixer_eps_{other_eps:g}']:.2e}")
        if extra["logits_rel_diff_if_no_mixer_norm"] < 1e-2:
            print(f"  WARNING {case['name']}: the mixer norm barely matters in this case")
        if extra[f"logits_rel_diff_if_mixer_eps_{other_eps:g}"] < 1e-3:
            print(f"  WARNING {case['name']}: the mixer eps barely matters in this case")
    # generate consistency: the continuation is what a full forward over prompt+generated predicts
    full = torch.cat([ids, generated])
    full_ref = fwd(rcfg, rw, full.numpy())["logits"][len(ids) - 1 : len(full) - 1]
    errors["generated_logits"] = ref_numpy.rel_err(gen_logits.numpy(), full_ref)
    assert errors["generated_logits"] < TOL_REL, f"generate's logits vs reference: {errors['generated_logits']}"
    assert (full_ref.argmax(-1) == generated.numpy()).all(), "greedy tokens differ from the reference's argmax"
    top2 = np.sort(full_ref, axis=-1)[:, -2:]
    min_margin = float((top2[:, 1] - top2[:, 0]).min())

    stats = tap_stats(arch, cfg, tensors, rw)
    meta = {
        "format": FORMAT,
        "case": case["name"],
        "architecture": arch,
        "hf_class": type(model).__name__,
        "about": case["about"],
        "seed": str(seed),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "device": "cpu, float32 (plain PyTorch path; no mamba_ssm / causal_conv1d)",
        "hidden_states": f"hidden_states.k for k = 0..{n_layer}: HF output_hidden_states. k < {n_layer}: the "
                         f"residual stream after block k (NOT the embedding: that is 'embeddings'); "
                         f"k = {n_layer}: after the final norm_f (the lm_head input).",
        "taps": json.dumps(describe_taps(arch, cfg)),
        "generate": json.dumps({"prompt": "generate.prompt_ids (= input_ids)", "max_new_tokens": N_GENERATE,
                                "do_sample": False, "use_cache": True, "min_top1_top2_margin": min_margin}),
        "self_check": json.dumps({"reference": "scripts/golden/ref_numpy.py, float64, from the saved files",
                                  "rel_errors": errors, **extra}),
        "stats": json.dumps(stats),
    }
    path = os.path.join(folder, "golden.safetensors")
    save_file(tensors, path, metadata=meta)
    sizes = {f: os.path.getsize(os.path.join(folder, f)) for f in sorted(os.listdir(folder))}
    print(f"  {case['name']}: seed {seed}, T={len(ids)}, files {sizes}, margin {min_margin:.3g}, "
          f"Δ q01..q99 {stats['delta_q01']:.2e}..{stats['delta_q99']:.2e}, {time.time() - t0:.1f}s")
    return {
        "name": case["name"],
        "architecture": arch,
        "hf_class": type(model).__name__,
        "about": case["about"],
        "seed": seed,
        "seq_len": len(ids),
        "n_layer": n_layer,
        "n_generate": N_GENERATE,
        "files": sizes,
        "self_check_rel_errors": errors,
        **extra,
        "min_top1_top2_margin_generate": min_margin,
        "stats": stats,
    }


def degenerate(arch, cfg, ids, logits, taps, generated, gen_logits) -> str | None:
    logits = logits.float()
    if not torch.isfinite(logits).all():
        return "non-finite logits"
    spread = logits.std(dim=-1)
    if spread.min() < 0.3:
        return f"logits nearly flat at some position (std {spread.min():.3f})"
    argmax = logits.argmax(-1)
    if argmax.unique().numel() < max(5, len(ids) // 10):
        return f"argmax takes only {argmax.unique().numel()} values over {len(ids)} positions"
    if generated.unique().numel() < 5:
        return f"greedy continuation uses only {generated.unique().numel()} distinct tokens"
    top2 = gen_logits.topk(2, dim=-1).values
    if (top2[:, 0] - top2[:, 1]).min() < 5e-3:
        return "a near-tie in the greedy continuation (margin < 5e-3)"
    deltas = torch.cat([taps[f"layers.{i}.delta"].flatten() for i in range(cfg.num_hidden_layers)])
    q = torch.quantile(deltas.double(), torch.tensor([0.01, 0.99], dtype=torch.float64))
    if not (q[0] < 8e-3 and q[1] > 0.25):
        return f"Δ range too narrow: q01 {q[0]:.2e}, q99 {q[1]:.2e}"
    return None


def tap_stats(arch, cfg, tensors, w) -> dict:
    deltas = [tensors[f"layers.{i}.delta"].double() for i in range(cfg.num_hidden_layers)]
    dall = torch.cat([d.flatten() for d in deltas])
    q = torch.quantile(dall, torch.tensor([0.01, 0.5, 0.99], dtype=torch.float64)).tolist()
    # retention exp(Δ·A) over all (t, channel/head, state) for layer 0
    a = -np.exp(w["backbone.layers.0.mixer.A_log"])
    d0 = deltas[0].numpy()
    ret = np.exp(d0 * a[None]) if arch == "mamba2" else np.exp(d0[..., None] * a[None])
    logits = tensors["logits"]
    return {
        "delta_min": float(dall.min()), "delta_q01": q[0], "delta_median": q[1], "delta_q99": q[2],
        "delta_max": float(dall.max()),
        "layer0_retention_frac_below_0.5": float((ret < 0.5).mean()),
        "layer0_retention_frac_above_0.99": float((ret > 0.99).mean()),
        "logits_std_mean": float(logits.std(dim=-1).mean()),
        "distinct_argmax": int(logits.argmax(-1).unique().numel()),
        "distinct_generated": int(tensors["generated_ids"].unique().numel()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="test/fixtures/golden")
    ap.add_argument("--only", nargs="*", help="case names (default: all)")
    ap.add_argument("--cases", help="comma-separated case names (default: all); combined with --only")
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for pkg in ("mamba_ssm", "causal_conv1d", "kernels"):
        try:
            __import__(pkg)
            print(f"WARNING: {pkg} is importable; transformers may not use the plain PyTorch path")
        except ImportError:
            pass
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, numpy {np.__version__}")
    os.makedirs(args.out, exist_ok=True)
    manifest_path = os.path.join(args.out, "manifest.json")
    old = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old = {c["name"]: c for c in json.load(f).get("cases", [])}
    results = dict(old)
    wanted = set(args.only or []) | {c for c in (args.cases or "").split(",") if c}
    unknown = wanted - {c["name"] for c in CASES}
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; the cases are {[c['name'] for c in CASES]}")
    failed = []
    for case in CASES:
        if wanted and case["name"] not in wanted:
            continue
        try:
            results[case["name"]] = make_case(case, args.out)
        except BaseException as e:  # one failing case must not lose the others (SystemExit included)
            if isinstance(e, KeyboardInterrupt):
                raise
            traceback.print_exc()
            failed.append(case["name"])
    ordered = [results[c["name"]] for c in CASES if c["name"] in results]
    manifest = {
        "format": FORMAT,
        "made_by": "python3 scripts/golden/make_golden.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "tolerance_note": f"every tensor matched an independent float64 reference to rel err < {TOL_REL:g}",
        "cases": ordered,
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    total = 0
    for c in ordered:
        total += sum(c["files"].values())
    print(f"golden fixtures: {len(ordered)} cases, {total / 1e6:.2f} MB" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    assert total < 8e6, "fixtures over 8 MB"
    if failed:
        raise SystemExit(f"failed cases: {', '.join(failed)}")


if __name__ == "__main__":
    main()
