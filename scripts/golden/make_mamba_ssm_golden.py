"""Golden fixtures from the official mamba_ssm code: Mamba-2 with 8 groups and the per-group gated norm.

    python3 scripts/golden/make_mamba_ssm_golden.py OUT_ROOT [--cases NAME ...]

Needs a CUDA GPU, torch, Triton, numpy, safetensors and the mamba_ssm source on PYTHONPATH (its
compiled CUDA extensions are not needed: the Mamba2 layer runs with use_mem_eff_path=False, its
conv through nn.Conv1d, its scan and gated norm through mamba_ssm's Triton kernels). No network.

Writes OUT_ROOT/test/fixtures/golden-mamba-ssm/<case>/ and manifest.json there:

- mamba2-ssm-8groups: mamba_ssm's own convention, config.json (d_model, n_layer, ssm_cfg with
  layer "Mamba2", ngroups 8, d_state 16, headdim 8, chunk_size 32; pad_vocab_size_multiple 8 pads
  vocab 260 to 264) + model.safetensors (float32, mamba_ssm's tensor names) + golden.safetensors.
- codestral-tiny: mistral's convention, as mistralai/Mamba-Codestral-7B-v0.1 ships it and
  mistral-inference reads it: params.json (dim, n_layers, vocab_size, n_groups 8, …, model_type
  "mamba"; every other size is mamba_ssm's Mamba2 default, as for Codestral: d_state 128,
  headdim 64, expand 2, chunk 256) + consolidated.safetensors (BF16, the names of
  mistral_inference.mamba.Mamba's state dict: "model." + mamba_ssm's) + golden.safetensors. The
  model is built exactly as mistral_inference.mamba.Mamba builds it from params.json.

golden.safetensors has the layout of test/fixtures/golden (README there): input_ids, logits,
embeddings, hidden_states.k, layers.i.{x, delta, B, C, y, out_proj_in}, generate.prompt_ids,
generated_ids, generated_logits. Each case is checked against scripts/golden/ref_numpy.py
(float64, norm_groups="per_group") from the saved files; relative error < 1e-4 is asserted.
If the Triton kernels miss that (TF32 dots), the case is re-run with mamba_ssm's own PyTorch
reference ops (ssd_chunk_scan_combined_ref, rms_norm_ref) and the metadata says so.

Each case is made in a try block: one failing case does not stop the other. The last line printed
is the result line.
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
# Triton's tl.dot on float32 inputs defaults to TF32 on Ampere and later; a golden wants IEEE fp32.
os.environ.setdefault("TRITON_F32_DEFAULT", "ieee")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_numpy  # noqa: E402

FORMAT = "mamba-studio/golden@1"
SUBDIR = os.path.join("test", "fixtures", "golden-mamba-ssm")
N_GENERATE = 16
TOL_REL = 1e-4
# "cuda" on the GPU machine. "cpu" only for a dry run of this script's plumbing against a stand-in mamba_ssm.
DEVICE = os.environ.get("GOLDEN_DEVICE", "cuda")

CASES = [
    dict(
        name="mamba2-ssm-8groups",
        form="mamba_ssm",
        seed=3001,
        seq_len=150,
        about="mamba_ssm MambaLMHeadModel, Mamba2 layers with ngroups 8 (16 heads × headdim 8, 2 heads per group, "
              "d_state 16), chunk_size 32 (150 tokens: 5 chunks, the last partial), 2 layers, untied, vocab 260 "
              "padded to 264 (pad_vocab_size_multiple 8); RMSNormGated(group_size = d_inner / 8, norm_before_gate=False)",
        config=dict(d_model=64, d_intermediate=0, n_layer=2, vocab_size=260,
                    ssm_cfg=dict(layer="Mamba2", d_state=16, headdim=8, ngroups=8, chunk_size=32),
                    attn_layer_idx=[], attn_cfg={}, rms_norm=True, residual_in_fp32=True, fused_add_norm=True,
                    pad_vocab_size_multiple=8, tie_embeddings=False),
    ),
    dict(
        name="codestral-tiny",
        form="mistral",
        seed=3002,
        seq_len=64,
        about="mistral's params.json + consolidated.safetensors (BF16) of a one-layer Mamba-Codestral-shaped model: "
              "dim 256, n_groups 8, and mamba_ssm's Mamba2 defaults as Codestral uses them (d_state 128, headdim 64, "
              "so 8 heads of 64, expand 2, chunk 256), untied, vocab 300 (pad_vocab_size_multiple 1)",
        params=dict(dim=256, n_layers=1, vocab_size=300, n_groups=8, rms_norm=True, residual_in_fp32=True,
                    fused_add_norm=True, pad_vocab_size_multiple=1, tie_embeddings=False, model_type="mamba"),
    ),
]


def mamba_ssm_config_dict(case: dict) -> dict:
    """The mamba_ssm MambaConfig fields of a case (for the mistral form, as mistral_inference.mamba.Mamba maps params.json)."""
    if case["form"] == "mamba_ssm":
        return json.loads(json.dumps(case["config"]))
    p = case["params"]
    return dict(d_model=p["dim"], n_layer=p["n_layers"], vocab_size=p["vocab_size"],
                ssm_cfg={"ngroups": p["n_groups"], "layer": "Mamba2"}, attn_layer_idx=[], attn_cfg={},
                rms_norm=p["rms_norm"], residual_in_fp32=p["residual_in_fp32"], fused_add_norm=p["fused_add_norm"],
                pad_vocab_size_multiple=p["pad_vocab_size_multiple"], tie_embeddings=p["tie_embeddings"])


def import_mamba_ssm():
    try:
        from mamba_ssm.models.config_mamba import MambaConfig
        from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
        import mamba_ssm
        return MambaConfig, MambaLMHeadModel, getattr(mamba_ssm, "__version__", "?")
    except ImportError:
        if "_golden_fallback" in sys.modules:
            raise
        traceback.print_exc()
        print("mamba_ssm did not import as a package; importing its Mamba2 model modules without its __init__ "
              "(and without Mamba3, which this script does not use)")
    # mamba_ssm/__init__.py imports every layer (Mamba1's CUDA op, Mamba3's kernels); a Mamba2 model needs none of them.
    import importlib.util
    import types
    for name in [n for n in sys.modules if n == "mamba_ssm" or n.startswith("mamba_ssm.")]:
        del sys.modules[name]
    spec = importlib.util.find_spec("mamba_ssm")
    assert spec is not None and spec.submodule_search_locations, "mamba_ssm is not on PYTHONPATH"
    pkg = types.ModuleType("mamba_ssm")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__version__ = "? (package __init__ bypassed)"
    sys.modules["mamba_ssm"] = pkg
    sys.modules["_golden_fallback"] = pkg
    try:
        importlib.import_module("mamba_ssm.modules.mamba3")
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        stub = types.ModuleType("mamba_ssm.modules.mamba3")
        stub.Mamba3 = None
        sys.modules["mamba_ssm.modules.mamba3"] = stub
    from mamba_ssm.models.config_mamba import MambaConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
    return MambaConfig, MambaLMHeadModel, pkg.__version__


def build_model(case: dict):
    MambaConfig, MambaLMHeadModel, _ = import_mamba_ssm()
    cfg = mamba_ssm_config_dict(case)
    # Runtime option, not part of the checkpoint: no fused conv+scan kernel (it needs causal_conv1d's CUDA build).
    cfg["ssm_cfg"] = {**cfg["ssm_cfg"], "use_mem_eff_path": False}
    model = MambaLMHeadModel(MambaConfig(**cfg), device=DEVICE, dtype=torch.float32)
    return model.eval()


def device_name() -> str:
    return torch.cuda.get_device_name(0) if DEVICE == "cuda" else f"{DEVICE} (dry run)"


def inv_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


def uniform(g, shape, lo, hi):
    return torch.rand(shape, generator=g) * (hi - lo) + lo


@torch.no_grad()
def perturb(model, g: torch.Generator, bf16: bool) -> None:
    """As make_golden.py does for Mamba-2: values where every term matters (wide Δ, A, D, norms, O(1) activations)."""
    sd = dict(model.named_parameters())
    d = model.config.d_model

    def put(name, value):
        value = value.to(torch.bfloat16).float() if bf16 else value
        sd[name].copy_(value.to(sd[name].device))

    def randn(shape, std):
        return torch.randn(shape, generator=g) * std

    put("backbone.embedding.weight", randn(sd["backbone.embedding.weight"].shape, 0.3))
    put("backbone.norm_f.weight", uniform(g, (d,), 0.6, 1.4))
    put("lm_head.weight", randn(sd["lm_head.weight"].shape, 2.0 / math.sqrt(d)))
    for i, layer in enumerate(model.backbone.layers):
        p = f"backbone.layers.{i}."
        m = layer.mixer
        nh = m.nheads
        put(p + "norm.weight", uniform(g, (d,), 0.6, 1.4))
        w = randn(sd[p + "mixer.in_proj.weight"].shape, 1.0 / math.sqrt(d))
        w[-nh:] = randn((nh, d), 1.5 / math.sqrt(d))  # dt rows: an input-dependent Δ
        put(p + "mixer.in_proj.weight", w)
        put(p + "mixer.conv1d.weight", uniform(g, sd[p + "mixer.conv1d.weight"].shape, -0.7, 0.7))
        put(p + "mixer.conv1d.bias", randn(sd[p + "mixer.conv1d.bias"].shape, 0.2))
        ow = sd[p + "mixer.out_proj.weight"]
        put(p + "mixer.out_proj.weight", randn(ow.shape, 2.5 / math.sqrt(ow.shape[1])))
        base = torch.exp(torch.linspace(math.log(3e-3), math.log(0.6), nh))[torch.randperm(nh, generator=g)]
        put(p + "mixer.dt_bias", inv_softplus(base))
        put(p + "mixer.A_log", torch.log(uniform(g, (nh,), 0.3, 8.0)))
        put(p + "mixer.D", uniform(g, (nh,), -1.0, 1.5))
        put(p + "mixer.norm.weight", uniform(g, sd[p + "mixer.norm.weight"].shape, 0.6, 1.4))


def use_reference_ops(enable: bool):
    """Swap mamba_ssm's Triton scan and gated norm for its own PyTorch reference functions (or back)."""
    import mamba_ssm.modules.mamba2 as m2
    from mamba_ssm.ops.triton import layernorm_gated as lg
    from mamba_ssm.ops.triton.ssd_combined import ssd_chunk_scan_combined_ref

    if not hasattr(m2, "_golden_saved"):
        m2._golden_saved = (m2.mamba_chunk_scan_combined, lg.RMSNorm.forward)
    if not enable:
        m2.mamba_chunk_scan_combined, lg.RMSNorm.forward = m2._golden_saved
        return

    def scan(x, dt, A, B, C, chunk_size, D=None, z=None, dt_bias=None, dt_softplus=False, **kw):
        assert not kw.get("return_final_states") and kw.get("seq_idx") is None and kw.get("cu_seqlens") is None
        assert "dt_limit" not in kw
        return ssd_chunk_scan_combined_ref(x, dt, A, B, C, chunk_size, D=D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus)

    def norm_forward(self, x, z=None):
        return lg.rms_norm_ref(x, self.weight, self.bias, z=z, eps=self.eps, group_size=self.group_size,
                               norm_before_gate=self.norm_before_gate)

    m2.mamba_chunk_scan_combined = scan
    lg.RMSNorm.forward = norm_forward


@torch.no_grad()
def capture(model, ids: torch.Tensor):
    """One forward pass without a cache, with hooks. Taps [T, ...] on the CPU (batch dim dropped)."""
    taps: dict[str, torch.Tensor] = {}
    hooks = []
    t_len = ids.shape[0]
    cpu = lambda t: t.detach().float().cpu().clone()  # noqa: E731
    hooks.append(model.backbone.embedding.register_forward_hook(lambda m, i, o: taps.__setitem__("embeddings", cpu(o[0]))))
    for li, layer in enumerate(model.backbone.layers):
        mixer = layer.mixer

        def block_hook(m, inp, out, li=li):
            hidden, residual = out
            taps[f"hidden_states.{li}"] = cpu((hidden.float() + residual.float())[0])

        def inproj_hook(m, inp, out, li=li, mixer=mixer):
            dt = out[0, :, -mixer.nheads:].float()
            delta = F.softplus(dt + mixer.dt_bias.float())
            lo, hi = mixer.dt_limit
            taps[f"layers.{li}.delta"] = cpu(torch.clamp(delta, lo, hi))

        def conv_hook(m, inp, out, li=li, mixer=mixer):
            # mamba_ssm calls self.conv1d (padding d_conv - 1) and keeps the first T outputs, then SiLU.
            xbc = F.silu(out[0, :, :t_len].transpose(0, 1).float())
            gn = mixer.ngroups * mixer.d_state
            x, b_in, c_out = torch.split(xbc, [mixer.d_ssm, gn, gn], dim=-1)
            taps[f"layers.{li}.x"], taps[f"layers.{li}.B"], taps[f"layers.{li}.C"] = cpu(x), cpu(b_in), cpu(c_out)

        def norm_hook(m, inp, out, li=li):
            taps[f"layers.{li}.y"] = cpu(inp[0][0])

        def outproj_pre(m, inp, li=li):
            taps[f"layers.{li}.out_proj_in"] = cpu(inp[0][0])

        hooks += [
            layer.register_forward_hook(block_hook),
            mixer.in_proj.register_forward_hook(inproj_hook),
            mixer.conv1d.register_forward_hook(conv_hook),
            mixer.norm.register_forward_hook(norm_hook),
            mixer.out_proj.register_forward_pre_hook(outproj_pre),
        ]
    n_layer = len(model.backbone.layers)
    hooks.append(model.lm_head.register_forward_pre_hook(lambda m, i: taps.__setitem__(f"hidden_states.{n_layer}", cpu(i[0][0]))))
    try:
        logits = model(ids[None].to(DEVICE)).logits[0].float().cpu()
    finally:
        for h in hooks:
            h.remove()
    return taps, logits


@torch.no_grad()
def greedy_full(model, ids: torch.Tensor, n: int, vocab: int):
    """Greedy continuation by full forwards without a cache (independent of the step path)."""
    seq = ids.clone()
    rows = []
    for _ in range(n):
        row = model(seq[None].to(DEVICE)).logits[0, -1, :vocab].float().cpu()
        rows.append(row)
        seq = torch.cat([seq, row.argmax()[None]])
    return seq[len(ids):], torch.stack(rows)


@torch.no_grad()
def greedy_cached(model, ids: torch.Tensor, n: int, vocab: int):
    """mamba_ssm's own generate (prefill with the inference cache, then its one-token step)."""
    out = model.generate(input_ids=ids[None].to(DEVICE), max_length=len(ids) + n, top_k=1, cg=False,
                         return_dict_in_generate=True, output_scores=True)
    gen = out.sequences[0, len(ids):].cpu()
    scores = torch.stack([s[0, :vocab].float().cpu() for s in out.scores])
    return gen, scores


def hf_style(cfg: dict, n_vocab_padded: int, model) -> dict:
    """ref_numpy.mamba2_forward's config keys for a mamba_ssm model."""
    m = model.backbone.layers[0].mixer
    return dict(hidden_size=cfg["d_model"], expand=m.d_inner // cfg["d_model"], state_size=m.d_state, n_groups=m.ngroups,
                num_heads=m.nheads, head_dim=m.headdim, layer_norm_epsilon=1e-5, time_step_limit=list(m.dt_limit),
                num_hidden_layers=cfg["n_layer"], tie_word_embeddings=cfg["tie_embeddings"], vocab_size=n_vocab_padded)


def degenerate(cfg_ref, ids, logits, taps, generated, gen_logits) -> str | None:
    if not torch.isfinite(logits).all():
        return "non-finite logits"
    if logits.std(dim=-1).min() < 0.3:
        return "logits nearly flat at some position"
    if logits.argmax(-1).unique().numel() < max(5, len(ids) // 10):
        return "argmax takes few values"
    if generated.unique().numel() < 4:
        return "greedy continuation uses fewer than 4 distinct tokens"
    top2 = gen_logits.topk(2, dim=-1).values
    if (top2[:, 0] - top2[:, 1]).min() < 5e-3:
        return "a near-tie in the greedy continuation (margin < 5e-3)"
    deltas = torch.cat([taps[f"layers.{i}.delta"].flatten() for i in range(cfg_ref["num_hidden_layers"])])
    q = torch.quantile(deltas.double(), torch.tensor([0.01, 0.99], dtype=torch.float64))
    if not (q[0] < 1e-2 and q[1] > 0.2):
        return f"Δ range too narrow: q01 {q[0]:.2e}, q99 {q[1]:.2e}"
    return None


REFERENCE_OPS = "mamba_ssm PyTorch reference ops (ssd_chunk_scan_combined_ref, rms_norm_ref)"


def forward_and_greedy(model, ids, vocab, reference=False):
    """capture + greedy_full with mamba_ssm's Triton kernels, or its PyTorch reference ops (also when the Triton path raises)."""
    if not reference:
        try:
            use_reference_ops(False)
            taps, logits = capture(model, ids)
            gen, gen_logits = greedy_full(model, ids, N_GENERATE, vocab)
            return taps, logits, gen, gen_logits, "triton (TRITON_F32_DEFAULT=" + os.environ.get("TRITON_F32_DEFAULT", "") + ")"
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            print("  the Triton path raised; running mamba_ssm's PyTorch reference ops instead")
    use_reference_ops(True)
    taps, logits = capture(model, ids)
    gen, gen_logits = greedy_full(model, ids, N_GENERATE, vocab)
    return taps, logits, gen, gen_logits, REFERENCE_OPS


def make_case(case: dict, out_root: str) -> dict:
    t0 = time.time()
    _, _, mamba_version = import_mamba_ssm()
    folder = os.path.join(out_root, SUBDIR, case["name"])
    bf16 = case["form"] == "mistral"
    cfg = mamba_ssm_config_dict(case)
    last = None
    for attempt in range(6):
        seed = case["seed"] + 100 * attempt
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        model = build_model(case)
        perturb(model, g, bf16)
        vocab_padded = model.lm_head.weight.shape[0]
        ids = torch.randint(0, cfg["vocab_size"], (case["seq_len"],), generator=g)
        taps, logits, gen_full, gen_full_logits, kernels = forward_and_greedy(model, ids, vocab_padded)
        problem = degenerate({"num_hidden_layers": cfg["n_layer"]}, ids, logits, taps, gen_full, gen_full_logits)
        if problem is None:
            break
        last = problem
        print(f"  {case['name']}: seed {seed} rejected: {problem}")
    else:
        raise SystemExit(f"{case['name']}: no acceptable seed ({last})")

    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    if cfg["tie_embeddings"]:
        state.pop("lm_head.weight")
    if case["form"] == "mamba_ssm":
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=4)  # what MambaLMHeadModel.save_pretrained writes (config.__dict__)
        save_file(state, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    else:
        with open(os.path.join(folder, "params.json"), "w") as f:
            json.dump(case["params"], f, indent=2)
        # mistral_inference.mamba.Mamba holds MambaLMHeadModel as `self.model`: its state dict's names.
        bf = {"model." + k: v.to(torch.bfloat16).contiguous() for k, v in state.items()}
        save_file(bf, os.path.join(folder, "consolidated.safetensors"))
        assert all(torch.equal(bf["model." + k].float(), v) for k, v in state.items()), "weights were not BF16-exact"

    # ---- self-check against the float64 reference (per-group norm), from the saved weights
    ref_w = {k.replace("backbone.embedding.", "backbone.embeddings."): v.double().numpy() for k, v in state.items()}
    rcfg = hf_style(cfg, vocab_padded, model)
    ref = ref_numpy.mamba2_forward(rcfg, ref_w, ids.numpy(), norm_groups="per_group")
    full_norm = ref_numpy.mamba2_forward(rcfg, ref_w, ids.numpy(), norm_groups="full")

    def errors_of(taps, logits):
        tensors = {**taps, "logits": logits}
        return {k: ref_numpy.rel_err(tensors[k].numpy(), v) for k, v in ref.items() if k in tensors}

    errors = errors_of(taps, logits)
    if max(errors.values()) >= TOL_REL and kernels != REFERENCE_OPS:
        worst = max(errors, key=errors.get)
        print(f"  {case['name']}: Triton kernels off the float64 reference ({worst} {errors[worst]:.2e}); "
              "re-running with mamba_ssm's PyTorch reference ops")
        taps, logits, gen_full, gen_full_logits, kernels = forward_and_greedy(model, ids, vocab_padded, reference=True)
        errors = errors_of(taps, logits)
    worst = max(errors, key=errors.get)
    print(f"  {case['name']}: self-check worst rel err {errors[worst]:.2e} ({worst}); logits {errors['logits']:.2e}; kernels {kernels}")
    for k, e in errors.items():
        assert e < TOL_REL, f"{k} differs from the float64 reference: {e}"
    norm_diff = ref_numpy.rel_err(full_norm["logits"], ref["logits"])
    print(f"  {case['name']}: normalizing over all of d_inner instead would change the logits by {norm_diff:.2e}")
    assert norm_diff > 1e-2, "the per-group norm makes no difference here: the case would not test it"

    # greedy: mamba_ssm's cached generate (prefill, then its step) must agree with full forwards
    generate_path = "mamba_ssm generate (prefill with the inference cache, then Mamba2.step), top_k=1"
    try:
        use_reference_ops(False)
        generated, gen_logits = greedy_cached(model, ids, N_GENERATE, vocab_padded)
        assert torch.equal(generated, gen_full), f"cached generate {generated.tolist()} ≠ full forwards {gen_full.tolist()}"
        gen_err = ref_numpy.rel_err(gen_logits.numpy(), gen_full_logits.numpy())
        assert gen_err < 1e-3, f"cached generate's logits differ from full forwards by {gen_err}"
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print(f"  {case['name']}: mamba_ssm generate failed or disagreed; the continuation comes from full forwards")
        generated, gen_logits = gen_full, gen_full_logits
        generate_path = "greedy by full forwards without a cache (mamba_ssm generate failed; see the log)"
    full = torch.cat([ids, generated])
    ref_full = ref_numpy.mamba2_forward(rcfg, ref_w, full.numpy(), norm_groups="per_group")["logits"][len(ids) - 1: len(full) - 1]
    errors["generated_logits"] = ref_numpy.rel_err(gen_logits.numpy(), ref_full)
    assert errors["generated_logits"] < TOL_REL * 10, f"generated logits vs reference: {errors['generated_logits']}"
    assert (ref_full.argmax(-1) == generated.numpy()).all(), "greedy tokens differ from the reference's argmax"
    top2 = np.sort(ref_full, axis=-1)[:, -2:]
    margin = float((top2[:, 1] - top2[:, 0]).min())

    n_layer = cfg["n_layer"]
    tensors = {"input_ids": ids.to(torch.int32), "logits": logits, "embeddings": taps["embeddings"]}
    for k in range(n_layer + 1):
        tensors[f"hidden_states.{k}"] = taps[f"hidden_states.{k}"]
    for i in range(n_layer):
        for nm in ("x", "delta", "B", "C", "y", "out_proj_in"):
            tensors[f"layers.{i}.{nm}"] = taps[f"layers.{i}.{nm}"]
    tensors["generate.prompt_ids"] = ids.to(torch.int32)
    tensors["generated_ids"] = generated.to(torch.int32)
    tensors["generated_logits"] = gen_logits
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    m = model.backbone.layers[0].mixer
    dall = torch.cat([tensors[f"layers.{i}.delta"].flatten() for i in range(n_layer)]).double()
    q = torch.quantile(dall, torch.tensor([0.01, 0.5, 0.99], dtype=torch.float64)).tolist()
    stats = {"delta_q01": q[0], "delta_median": q[1], "delta_q99": q[2],
             "distinct_argmax": int(logits.argmax(-1).unique().numel()),
             "distinct_generated": int(generated.unique().numel())}
    taps_doc = {
        "input_ids": "int32 [T]", "logits": f"float32 [T, {vocab_padded}]: lm_head output at every position",
        "embeddings": "float32 [T, d_model]: backbone.embedding output (hook)",
        "hidden_states.k": f"float32 [T, d_model]: k < {n_layer}: the residual stream after block k (the block's "
                           f"mixer output + its residual input, from the Block's outputs); k = {n_layer}: norm_f output "
                           "(lm_head input, pre-hook)",
        "layers.i.x": f"float32 [T, {m.d_ssm}]: x after conv1d + SiLU (conv1d's output hooked; mamba_ssm keeps the first T)",
        "layers.i.delta": f"float32 [T, {m.nheads}]: softplus(dt + dt_bias) from the hooked in_proj output (the scan computes it inside)",
        "layers.i.B": f"float32 [T, {m.ngroups * m.d_state}]: B after conv + SiLU, groups in order",
        "layers.i.C": f"float32 [T, {m.ngroups * m.d_state}]: C, as B",
        "layers.i.y": f"float32 [T, {m.d_ssm}]: scan output incl. D·x (input of mixer.norm, hook)",
        "layers.i.out_proj_in": f"float32 [T, {m.d_ssm}]: RMSNormGated(y, z), group_size {m.d_ssm // m.ngroups} (out_proj pre-hook)",
        "generated_ids": f"int32 [{N_GENERATE}]", "generated_logits": f"float32 [{N_GENERATE}, {vocab_padded}]",
    }
    meta = {
        "format": FORMAT, "case": case["name"], "architecture": "mamba2",
        "hf_class": "mamba_ssm.models.mixer_seq_simple.MambaLMHeadModel (Mamba2 layers)",
        "about": case["about"], "seed": str(seed), "mamba_ssm_version": mamba_version,
        "torch_version": torch.__version__, "numpy_version": np.__version__, "python_version": platform.python_version(),
        "device": f"{device_name()}, float32; kernels: {kernels}; TF32 off in torch",
        "hidden_states": taps_doc["hidden_states.k"],
        "taps": json.dumps(taps_doc),
        "generate": json.dumps({"path": generate_path, "max_new_tokens": N_GENERATE, "min_top1_top2_margin": margin}),
        "self_check": json.dumps({"reference": "scripts/golden/ref_numpy.py mamba2_forward(norm_groups='per_group'), "
                                               "float64, from the saved weights", "rel_errors": errors,
                                  "logits_rel_diff_if_norm_over_all_of_d_inner": norm_diff}),
        "stats": json.dumps(stats),
    }
    save_file(tensors, os.path.join(folder, "golden.safetensors"), metadata=meta)
    sizes = {f: os.path.getsize(os.path.join(folder, f)) for f in sorted(os.listdir(folder))}
    print(f"  {case['name']}: seed {seed}, T={len(ids)}, files {sizes}, margin {margin:.3g}, {time.time() - t0:.1f}s")
    return {"name": case["name"], "form": case["form"], "about": case["about"], "seed": seed, "seq_len": len(ids),
            "n_layer": n_layer, "kernels": kernels, "generate": generate_path, "files": sizes,
            "self_check_rel_errors": errors, "logits_rel_diff_if_norm_over_all_of_d_inner": norm_diff,
            "min_top1_top2_margin_generate": margin, "stats": stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_root")
    ap.add_argument("--cases", nargs="*", help="case names (default: all)")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    assert DEVICE != "cuda" or torch.cuda.is_available(), "needs a CUDA GPU (mamba_ssm's Triton kernels)"
    print(f"torch {torch.__version__}, {device_name()}, TRITON_F32_DEFAULT={os.environ.get('TRITON_F32_DEFAULT')}")
    out_dir = os.path.join(args.out_root, SUBDIR)
    os.makedirs(out_dir, exist_ok=True)
    results, failed = [], []
    for case in CASES:
        if args.cases and case["name"] not in args.cases:
            continue
        try:
            results.append(make_case(case, args.out_root))
        except BaseException:  # noqa: BLE001 — one case failing must not lose the others
            traceback.print_exc()
            failed.append(case["name"])
    try:
        _, _, version = import_mamba_ssm()
    except Exception:  # noqa: BLE001
        version = "not importable"
    manifest = {"format": FORMAT, "made_by": "python3 scripts/golden/make_mamba_ssm_golden.py OUT_ROOT",
                "mamba_ssm_version": version, "torch_version": torch.__version__,
                "tolerance_note": f"every tensor matched ref_numpy.py (float64, per-group norm) to rel err < {TOL_REL:g}",
                "cases": results, "failed": failed}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(sum(c["files"].values()) for c in results)
    print(f"mamba_ssm golden fixtures: {len(results)} written ({', '.join(c['name'] for c in results) or 'none'}), "
          f"{len(failed)} failed ({', '.join(failed) or 'none'}), {total / 1e6:.2f} MB in {out_dir}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
