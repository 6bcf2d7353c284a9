"""Independent float64 NumPy reference of Mamba-1, Falcon-Mamba and Mamba-2 (the math of docs/ARCHITECTURE.md).

Written from the equations, not from transformers' code: it reads only `config.json` and
`model.safetensors` and runs the plain recurrence token by token. make_golden.py uses it to
check that the fixtures it saves mean what the README says they mean.

Glossary (docs/ARCHITECTURE.md / paper → here):
  d_model → d, d_inner → di (= expand·d), N → n (d_state), dt_rank → r, Δ → delta,
  A = -exp(A_log), B/C the input-dependent write/read vectors, D the skip.
"""
from __future__ import annotations

import json
import os

import numpy as np
from safetensors.numpy import load_file


def load_model(folder: str) -> tuple[dict, dict[str, np.ndarray]]:
    with open(os.path.join(folder, "config.json")) as f:
        # transformers 5 writes non-finite floats as {"__float__": "Infinity"} (older versions: a bare
        # Infinity, which Python's json also accepts)
        cfg = json.load(f, object_hook=lambda o: float(o["__float__"]) if set(o) == {"__float__"} else o)
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    return cfg, w


def silu(v: np.ndarray) -> np.ndarray:
    return v / (1.0 + np.exp(-v))


def softplus(v: np.ndarray) -> np.ndarray:
    # softplus(v) = log(1 + e^v), and v itself when v > 20 (torch's threshold)
    return np.where(v > 20.0, v, np.log1p(np.exp(np.minimum(v, 20.0))))


def rmsnorm(v: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps) * weight


def causal_depthwise_conv(v: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """v [T, ch], weight [ch, 1, k] (torch Conv1d layout), zero history before t = 0.
    out[t, c] = bias[c] + Σ_j weight[c, 0, j] · v[t - (k-1) + j, c]"""
    t_len, ch = v.shape
    k = weight.shape[-1]
    padded = np.concatenate([np.zeros((k - 1, ch)), v], axis=0)
    out = np.zeros((t_len, ch))
    for j in range(k):
        out += weight[:, 0, j][None, :] * padded[j : j + t_len]
    if bias is not None:
        out += bias[None, :]
    return out


def lm_head(cfg: dict, w: dict[str, np.ndarray]) -> np.ndarray:
    if "lm_head.weight" in w:
        return w["lm_head.weight"]
    assert cfg.get("tie_word_embeddings", True), "untied config but no lm_head.weight stored"
    return w["backbone.embeddings.weight"]


def weightless_rms(v: np.ndarray, eps: float) -> np.ndarray:
    """RMS norm over the last axis without a weight: v / sqrt(mean(v²) + eps)."""
    return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps)


def mixer_rms_eps(cfg: dict) -> float | None:
    """Falcon-Mamba (model_type falcon_mamba): the eps of the weightless RMS norm on dt_r, B and C
    (config mixer_rms_eps, 1e-6 when absent); None for Mamba-1 (no such norm)."""
    if cfg.get("model_type") == "falcon_mamba":
        return float(cfg.get("mixer_rms_eps", 1e-6))
    return None


def mamba1_forward(
    cfg: dict, w: dict[str, np.ndarray], ids: np.ndarray, dt_b_c_rms: float | None | str = "config"
) -> dict[str, np.ndarray]:
    """Mamba-1 and Falcon-Mamba. dt_b_c_rms: the eps of Falcon-Mamba's weightless RMS norm applied
    separately to dt_r, B and C after x_proj; 'config' = from the config (mixer_rms_eps), None = no
    norm (plain Mamba-1). B and C are returned as the scan uses them (after the norm)."""
    if dt_b_c_rms == "config":
        dt_b_c_rms = mixer_rms_eps(cfg)
    d = cfg["hidden_size"]
    di = int(cfg["expand"] * d)
    n = cfg["state_size"]
    r = int(cfg["time_step_rank"]) if cfg["time_step_rank"] != "auto" else -(-d // 16)
    eps = cfg["layer_norm_epsilon"]
    taps: dict[str, np.ndarray] = {}
    residual = w["backbone.embeddings.weight"][ids]  # [T, d]
    taps["embeddings"] = residual
    for i in range(cfg["num_hidden_layers"]):
        p = f"backbone.layers.{i}."
        h = rmsnorm(residual, w[p + "norm.weight"], eps)
        xz = h @ w[p + "mixer.in_proj.weight"].T
        if p + "mixer.in_proj.bias" in w:
            xz = xz + w[p + "mixer.in_proj.bias"]
        x, z = xz[:, :di], xz[:, di:]
        x = silu(causal_depthwise_conv(x, w[p + "mixer.conv1d.weight"], w.get(p + "mixer.conv1d.bias")))
        xdbl = x @ w[p + "mixer.x_proj.weight"].T
        dt_r, b_in, c_out = xdbl[:, :r], xdbl[:, r : r + n], xdbl[:, r + n : r + 2 * n]
        if dt_b_c_rms is not None:
            dt_r, b_in, c_out = (weightless_rms(v, dt_b_c_rms) for v in (dt_r, b_in, c_out))
        delta = softplus(dt_r @ w[p + "mixer.dt_proj.weight"].T + w[p + "mixer.dt_proj.bias"])  # [T, di]
        a = -np.exp(w[p + "mixer.A_log"])  # [di, n]
        dvec = w[p + "mixer.D"]
        state = np.zeros((di, n))
        y = np.zeros((len(ids), di))
        for t in range(len(ids)):
            state = np.exp(delta[t][:, None] * a) * state + (delta[t] * x[t])[:, None] * b_in[t][None, :]
            y[t] = state @ c_out[t] + dvec * x[t]
        y = y * silu(z)
        out = y @ w[p + "mixer.out_proj.weight"].T
        if p + "mixer.out_proj.bias" in w:
            out = out + w[p + "mixer.out_proj.bias"]
        residual = residual + out
        taps[f"hidden_states.{i}"] = residual
        taps[f"layers.{i}.x"] = x
        taps[f"layers.{i}.delta"] = delta
        taps[f"layers.{i}.B"] = b_in
        taps[f"layers.{i}.C"] = c_out
    final = rmsnorm(residual, w["backbone.norm_f.weight"], eps)
    taps[f"hidden_states.{cfg['num_hidden_layers']}"] = final
    taps["logits"] = final @ lm_head(cfg, w).T
    return taps


def mamba2_forward(
    cfg: dict, w: dict[str, np.ndarray], ids: np.ndarray, norm_groups: str = "full"
) -> dict[str, np.ndarray]:
    """norm_groups: 'full' = gated RMSNorm over all of d_inner (what transformers' PyTorch path
    does); 'per_group' = one RMSNorm per group of d_inner / n_groups channels (mamba_ssm's
    RMSNormGated(group_size=d_inner // ngroups)). Identical when n_groups == 1."""
    d = cfg["hidden_size"]
    di = int(cfg["expand"] * d)
    n = cfg["state_size"]
    g = cfg["n_groups"]
    nh = cfg["num_heads"]
    hd = cfg["head_dim"]
    assert nh * hd == di
    eps = cfg["layer_norm_epsilon"]
    lo, hi = cfg.get("time_step_limit", [0.0, float("inf")])
    heads_per_group = nh // g
    taps: dict[str, np.ndarray] = {}
    residual = w["backbone.embeddings.weight"][ids]
    taps["embeddings"] = residual
    t_len = len(ids)
    for i in range(cfg["num_hidden_layers"]):
        p = f"backbone.layers.{i}."
        h = rmsnorm(residual, w[p + "norm.weight"], eps)
        proj = h @ w[p + "mixer.in_proj.weight"].T
        if p + "mixer.in_proj.bias" in w:
            proj = proj + w[p + "mixer.in_proj.bias"]
        conv_dim = di + 2 * g * n
        z, xbc, dt = proj[:, :di], proj[:, di : di + conv_dim], proj[:, di + conv_dim :]
        assert dt.shape[1] == nh
        xbc = silu(causal_depthwise_conv(xbc, w[p + "mixer.conv1d.weight"], w.get(p + "mixer.conv1d.bias")))
        x, b_in, c_out = xbc[:, :di], xbc[:, di : di + g * n], xbc[:, di + g * n :]
        delta = np.clip(softplus(dt + w[p + "mixer.dt_bias"]), lo, hi)  # [T, nh]
        a = -np.exp(w[p + "mixer.A_log"])  # [nh]
        dvec = w[p + "mixer.D"]  # [nh]
        state = np.zeros((nh, hd, n))
        y = np.zeros((t_len, nh, hd))
        for t in range(t_len):
            xt = x[t].reshape(nh, hd)
            bt = b_in[t].reshape(g, n)
            ct = c_out[t].reshape(g, n)
            for hh in range(nh):
                gg = hh // heads_per_group
                state[hh] = np.exp(delta[t, hh] * a[hh]) * state[hh] + delta[t, hh] * np.outer(xt[hh], bt[gg])
                y[t, hh] = state[hh] @ ct[gg] + dvec[hh] * xt[hh]
        y = y.reshape(t_len, di)
        taps[f"layers.{i}.y"] = y
        gated = y * silu(z)
        if norm_groups == "full":
            normed = rmsnorm(gated, w[p + "mixer.norm.weight"], eps)
        else:
            gr = gated.reshape(t_len, g, di // g)
            gr = gr / np.sqrt(np.mean(gr * gr, axis=-1, keepdims=True) + eps)
            normed = gr.reshape(t_len, di) * w[p + "mixer.norm.weight"]
        out = normed @ w[p + "mixer.out_proj.weight"].T
        if p + "mixer.out_proj.bias" in w:
            out = out + w[p + "mixer.out_proj.bias"]
        residual = residual + out
        taps[f"hidden_states.{i}"] = residual
        taps[f"layers.{i}.x"] = x
        taps[f"layers.{i}.delta"] = delta
        taps[f"layers.{i}.B"] = b_in
        taps[f"layers.{i}.C"] = c_out
    final = rmsnorm(residual, w["backbone.norm_f.weight"], eps)
    taps[f"hidden_states.{cfg['num_hidden_layers']}"] = final
    taps["logits"] = final @ lm_head(cfg, w).T
    return taps


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.linalg.norm(a - ref) / max(np.linalg.norm(ref), 1e-30))
