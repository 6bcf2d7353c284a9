"""PyTorch `.bin` checkpoint fixtures (torch.save's zip format) with safetensors twins.

    python3 scripts/golden/make_bin_fixtures.py <out-root> [--only CASE ...]

Writes <out-root>/test/fixtures/pytorch-bin/<case>/ for each case:

    bin/          config.json + pytorch_model.bin (or two shards + pytorch_model.bin.index.json),
                  written by torch.save exactly as mamba_ssm / transformers write them
    safetensors/  config.json + model.safetensors: the same weights, written by the safetensors
                  library (absent for the case that must be refused)
    golden.safetensors   input_ids (I64) and logits (F32): the independent float64 NumPy
                  reference (ref_numpy.py) run on the twin's weights
    manifest.json        per tensor: dtype, shape, storage key, storage_offset, stride, which
                  names share its storage, float64 sum and first values; what the case is for

and <out-root>/test/fixtures/pytorch-bin/manifest.json (cases, versions).

The model is a tiny nn.Module with mamba_ssm's module tree (backbone.embedding, backbone.layers.i
.mixer.{in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj}, backbone.layers.i.norm,
backbone.norm_f, lm_head), so `state_dict()` is what mamba_ssm's save_pretrained pickles: an
OrderedDict with `_metadata`, and, tied, lm_head.weight sharing the embedding's storage.
The sharded case uses transformers' names and plain dicts per shard, as transformers'
save_pretrained(safe_serialization=False) writes them.

Each case is made in its own try/except: one failing case does not stop the others. Needs torch
(any version ≥ 1.6; 2.x on the GPU machine), numpy, safetensors. No network, CPU only, seconds.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import platform
import shutil
import sys
import pickletools
import traceback
import zipfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from safetensors.torch import save_file  # noqa: E402

    import ref_numpy  # noqa: E402

    HAVE_SAFETENSORS = True
except ImportError:  # a dry run on a machine without safetensors: .bin files only
    HAVE_SAFETENSORS = False

FORMAT = "mamba-studio/pytorch-bin@1"
MAX_CASE_BYTES = 200_000
SEQ_LEN = 23


class Mixer(nn.Module):
    def __init__(self, d: int, di: int, n: int, r: int, k: int):
        super().__init__()
        self.in_proj = nn.Linear(d, 2 * di, bias=False)
        self.conv1d = nn.Conv1d(di, di, k, groups=di, padding=k - 1, bias=True)
        self.x_proj = nn.Linear(di, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, di, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(di, 1))
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d, bias=False)


class Norm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))


class Block(nn.Module):
    def __init__(self, d: int, di: int, n: int, r: int, k: int):
        super().__init__()
        self.mixer = Mixer(d, di, n, r, k)
        self.norm = Norm(d)


class Backbone(nn.Module):
    def __init__(self, v: int, d: int, layers: int, di: int, n: int, r: int, k: int, hf_names: bool):
        super().__init__()
        emb = nn.Embedding(v, d)
        if hf_names:
            self.embeddings = emb
        else:
            self.embedding = emb
        self.layers = nn.ModuleList([Block(d, di, n, r, k) for _ in range(layers)])
        self.norm_f = Norm(d)


class LMHead(nn.Module):
    def __init__(self, v: int, d: int, layers: int, tied: bool, hf_names: bool, n: int = 16, k: int = 4):
        super().__init__()
        di = 2 * d
        r = math.ceil(d / 16)
        self.backbone = Backbone(v, d, layers, di, n, r, k, hf_names)
        self.lm_head = nn.Linear(d, v, bias=False)
        emb = self.backbone.embeddings if hf_names else self.backbone.embedding
        if tied:
            self.lm_head.weight = emb.weight  # what mamba_ssm's tie_weights does


CASES = [
    dict(name="mamba-ssm-tied-f32", seed=3001, dtype="float32", tied=True, hf=False, d=16, layers=2, vocab=250,
         about="mamba_ssm names and config (vocab 250 padded to 256 by pad_vocab_size_multiple 8), tied: "
               "lm_head.weight shares the embedding's storage; OrderedDict with _metadata (BUILD)"),
    dict(name="mamba-ssm-untied-f32-views", seed=3002, dtype="float32", tied=False, hf=False, d=16, layers=2, vocab=256,
         views=True,
         about="mamba_ssm names, untied head; every layer's D and dt_proj.bias are views into one storage "
               "at non-zero storage offsets (torch.save writes the whole storage)"),
    dict(name="mamba-ssm-tied-bf16", seed=3003, dtype="bfloat16", tied=True, hf=False, d=16, layers=2, vocab=256,
         about="mamba_ssm names, bfloat16 weights (torch.BFloat16Storage), tied"),
    dict(name="hf-sharded-f16", seed=3004, dtype="float16", tied=False, hf=True, d=16, layers=3, vocab=256, shards=2,
         about="transformers names and config, float16 (torch.HalfStorage), untied, two shards + "
               "pytorch_model.bin.index.json, each shard a plain dict"),
    dict(name="mamba-ssm-tied-f32-proto4", seed=3005, dtype="float32", tied=True, hf=False, d=16, layers=2, vocab=256,
         protocol=4,
         about="as mamba-ssm-tied-f32 but torch.save(pickle_protocol=4): FRAME, SHORT_BINUNICODE, "
               "STACK_GLOBAL, MEMOIZE"),
    dict(name="noncontiguous", seed=3006, dtype="float32", tied=True, hf=False, d=16, layers=2, vocab=256,
         transposed=True, refuse=True,
         about="layer 0's x_proj.weight stored transposed (a non-contiguous view, strides (1, rows)): "
               "the reader must refuse it, naming the tensor"),
]

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build_model(case: dict) -> LMHead:
    torch.manual_seed(case["seed"])
    v = case["vocab"]
    if not case["hf"]:
        v = -(-v // 8) * 8  # mamba_ssm pads the vocabulary to pad_vocab_size_multiple
    model = LMHead(v, case["d"], case["layers"], case["tied"], case["hf"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.add_(0.3 * torch.randn_like(p))
            elif name.endswith("norm.weight") or name.endswith("norm_f.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(".D"):
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
            elif name.endswith("dt_proj.bias"):
                p.copy_(torch.log(torch.expm1(torch.empty_like(p).uniform_(0.01, 0.2))))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    return model.to(DTYPES[case["dtype"]])


def config_for(case: dict, model: LMHead) -> dict:
    if case["hf"]:
        return dict(model_type="mamba", architectures=["MambaForCausalLM"], vocab_size=case["vocab"],
                    hidden_size=case["d"], state_size=16, num_hidden_layers=case["layers"], expand=2,
                    conv_kernel=4, time_step_rank="auto", use_bias=False, use_conv_bias=True,
                    layer_norm_epsilon=1e-5, tie_word_embeddings=case["tied"], torch_dtype=case["dtype"],
                    bos_token_id=None, eos_token_id=None, pad_token_id=None)
    return dict(d_model=case["d"], n_layer=case["layers"], vocab_size=case["vocab"], ssm_cfg={},
                rms_norm=True, residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=8,
                tie_embeddings=case["tied"])


def state_dict_for(case: dict, model: LMHead) -> collections.OrderedDict:
    sd = model.state_dict()  # OrderedDict with _metadata; tied: lm_head.weight is the embedding's storage
    if not case["tied"]:
        assert sd["lm_head.weight"].data_ptr() != next(v for k, v in sd.items() if "embedding" in k).data_ptr()
    if case.get("views"):
        # One storage per layer holding [pad, D, dt_proj.bias]: D and dt_proj.bias are views at offsets.
        for i in range(case["layers"]):
            p = f"backbone.layers.{i}.mixer."
            d, b = sd[p + "D"], sd[p + "dt_proj.bias"]
            pad = torch.full((5,), 7.0, dtype=d.dtype)
            joint = torch.cat([pad, d, b])
            sd[p + "D"] = joint[5 : 5 + d.numel()]
            sd[p + "dt_proj.bias"] = joint[5 + d.numel() :]
            assert sd[p + "D"].storage_offset() == 5
    if case.get("transposed"):
        p = "backbone.layers.0.mixer.x_proj.weight"
        w = sd[p]
        sd[p] = w.t().contiguous().t()
        assert not sd[p].is_contiguous() and torch.equal(sd[p], w)
    return sd


def storage_key(t: torch.Tensor) -> int:
    try:
        return t.untyped_storage().data_ptr()
    except AttributeError:  # torch < 2.0
        return t.storage().data_ptr()


def describe(sd: dict) -> dict:
    by_storage: dict[int, list[str]] = collections.defaultdict(list)
    for k, t in sd.items():
        by_storage[storage_key(t)].append(k)
    out = {}
    for k, t in sd.items():
        f = t.detach().to(torch.float64).contiguous().view(-1)
        out[k] = dict(dtype=str(t.dtype).replace("torch.", ""), shape=list(t.shape), storage_offset=t.storage_offset(),
                      stride=list(t.stride()), contiguous=t.is_contiguous(),
                      shares_storage_with=[n for n in by_storage[storage_key(t)] if n != k],
                      sum=float(f.sum()), first=[float(x) for x in f[:4]])
    return out


def pickle_summary(path: str) -> dict:
    """The opcodes and globals data.pkl uses (what the studio's pickle reader must understand)."""
    with zipfile.ZipFile(path) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    ops, globals_, strings = set(), set(), []
    for op, arg, _ in pickletools.genops(pkl):
        ops.add(op.name)
        if op.name == "GLOBAL":
            globals_.add(arg.replace(" ", "."))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            globals_.add(f"{strings[-2]}.{strings[-1]}")
    return dict(opcodes=sorted(ops), globals=sorted(globals_))


def zip_entries(path: str) -> list[dict]:
    with zipfile.ZipFile(path) as z:
        return [dict(name=i.filename, size=i.file_size, method=i.compress_type, flags=i.flag_bits) for i in z.infolist()]


def to_reference_names(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k.replace("backbone.embedding.weight", "backbone.embeddings.weight"): v for k, v in w.items()}


def reference_config(case: dict, model: LMHead) -> dict:
    v = model.lm_head.weight.shape[0]
    return dict(hidden_size=case["d"], expand=2, state_size=16, time_step_rank="auto", layer_norm_epsilon=1e-5,
                num_hidden_layers=case["layers"], vocab_size=v, tie_word_embeddings=case["tied"])


def make_case(case: dict, root: str) -> dict:
    out = os.path.join(root, case["name"])
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "bin"))
    model = build_model(case)
    config = config_for(case, model)
    sd = state_dict_for(case, model)
    bin_dir = os.path.join(out, "bin")
    with open(os.path.join(bin_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    protocol = case.get("protocol", 2)
    files = []
    if case.get("shards"):
        names = list(sd.keys())
        half = len(names) // 2
        parts = [names[:half], names[half:]]
        n = len(parts)
        weight_map = {}
        total = 0
        for i, part in enumerate(parts):
            file = f"pytorch_model-{i + 1:05d}-of-{n:05d}.bin"
            shard = {k: sd[k] for k in part}  # a plain dict, as transformers' sharding writes
            torch.save(shard, os.path.join(bin_dir, file), pickle_protocol=protocol)
            files.append(file)
            for k in part:
                weight_map[k] = file
                total += sd[k].numel() * sd[k].element_size()
        with open(os.path.join(bin_dir, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    else:
        torch.save(sd, os.path.join(bin_dir, "pytorch_model.bin"), pickle_protocol=protocol)
        files.append("pytorch_model.bin")
    # torch itself must read back what it wrote, tensor for tensor (and the tie kept).
    loaded = {}
    for file in files:
        # weights_only=False: the file was just written here; torch 2.6+'s weights-only unpickler
        # does not take protocol 4's FRAME opcode, which the proto4 case writes on purpose.
        loaded.update(torch.load(os.path.join(bin_dir, file), map_location="cpu", weights_only=False))
    assert list(loaded) == list(sd), "torch.load gives other names"
    for k in sd:
        assert torch.equal(loaded[k], sd[k]), k
    if case["tied"]:
        emb = "backbone.embedding.weight" if not case["hf"] else "backbone.embeddings.weight"
        assert storage_key(loaded["lm_head.weight"]) == storage_key(loaded[emb]), "tie lost"

    manifest = dict(name=case["name"], about=case["about"], dtype=case["dtype"], tied=case["tied"],
                    refuse=bool(case.get("refuse")), weight_files=files, pickle_protocol=protocol,
                    zip_entries={f: zip_entries(os.path.join(bin_dir, f)) for f in files},
                    pickle={f: pickle_summary(os.path.join(bin_dir, f)) for f in files}, tensors=describe(sd))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)

    if HAVE_SAFETENSORS and not case.get("refuse"):
        st_dir = os.path.join(out, "safetensors")
        os.makedirs(st_dir)
        with open(os.path.join(st_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        twin = {k: v.detach().clone().contiguous() for k, v in sd.items()}
        if case["tied"]:
            del twin["lm_head.weight"]  # safetensors stores no shared tensors; the head is the embedding
        save_file(twin, os.path.join(st_dir, "model.safetensors"), metadata={"format": "pt"})
        # The golden logits: ref_numpy (float64) on the twin's weights, read back from the file.
        w = {k: v.to(torch.float64).numpy() for k, v in twin.items()}
        cfg = reference_config(case, model)
        rng = np.random.default_rng(case["seed"])
        ids = rng.integers(0, case["vocab"], size=SEQ_LEN).astype(np.int64)
        taps = ref_numpy.mamba1_forward(cfg, to_reference_names(w), ids)
        logits = taps["logits"]
        assert logits.shape == (SEQ_LEN, model.lm_head.weight.shape[0])
        assert np.isfinite(logits).all() and logits.std() > 0.05, f"degenerate logits (std {logits.std()})"
        save_file({"input_ids": torch.from_numpy(ids), "logits": torch.from_numpy(logits.astype(np.float32))},
                  os.path.join(out, "golden.safetensors"))
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
    assert size < MAX_CASE_BYTES, f"{case['name']}: {size} bytes, over {MAX_CASE_BYTES}"
    print(f"  {case['name']}: {', '.join(files)}; {len(sd)} tensors; {size} bytes")
    return dict(name=case["name"], about=case["about"], bytes=size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_root")
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    root = os.path.join(args.out_root, "test", "fixtures", "pytorch-bin")
    os.makedirs(root, exist_ok=True)
    print(f"torch {torch.__version__}, numpy {np.__version__}, safetensors {'yes' if HAVE_SAFETENSORS else 'NO (dry run)'}")
    made, failed = [], []
    for case in CASES:
        if args.only and case["name"] not in args.only:
            continue
        try:
            made.append(make_case(case, root))
        except Exception:  # noqa: BLE001 — one broken case must not cost the others
            traceback.print_exc()
            failed.append(case["name"])
    with open(os.path.join(root, "manifest.json"), "w") as f:
        json.dump(dict(format=FORMAT, torch=torch.__version__, numpy=np.__version__, python=platform.python_version(),
                       seq_len=SEQ_LEN, cases=made, failed=failed), f, indent=2)
    status = "OK" if not failed and HAVE_SAFETENSORS else "FAILED" if failed else "DRY RUN"
    print(f"pytorch-bin fixtures: {status}: {len(made)} cases written, {len(failed)} failed {failed}, torch {torch.__version__}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
