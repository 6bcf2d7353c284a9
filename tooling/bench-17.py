"""Issue 17's decode targets, measured in one run on one GPU: the studio's bench (random weights made
on the GPU, f16 / q8_0 / q4_k, plus q4_k_m for falcon-mamba-7b's memory) at the mamba-2.8b,
mamba2-2.7b and falcon-mamba-7b shapes, and the official mamba_ssm (fp32 and bf16, random weights,
its CUDA-graph decode) at the mamba-2.8b and mamba2-2.7b shapes, one after the other. Writes
OUT/bench17.json (every row, the environment) and OUT/bench17.md (a table of decode tok/s, the
ratio to the better official number of the same shape, the issue's target, the GPU memory), plus
OUT/studio-<shape>.json (the bench's own JSON) and OUT/bench17.log. Run by tooling/bench-17.sh.

    python3 tooling/bench-17.py --out DIR [--shapes a,b] [--formats f16,q8_0,q4_k] [--decode 256]
        [--repeats 3] [--budget 540] [--no-official] [--no-studio]

The studio side runs the built CLI through .devbench/run.py (tooling/bench-bundle.sh) when it is
there, else `node dist/cli/cli.js` (for a dry run on a machine with Node, e.g. --shapes tiny-k on
SwiftShader). The official side needs CUDA, torch, Triton, einops and the mamba_ssm source: the
folder holding `mamba_ssm/` is put on PYTHONPATH from MAMBA_SSM_SRC (default .devbench/mamba when
it exists). Its compiled CUDA extensions are not needed (as in bench/RESULTS.md and
scripts/golden/make_mamba_ssm_golden.py): decode steps run mamba_ssm's Triton
selective_state_update and the PyTorch conv step (no causal_conv1d); Mamba-1's prompt goes through
mamba_ssm's own selective_scan_ref when selective_scan_cuda is missing (the prompt is 8 tokens, and
it cancels below); Mamba-2 runs with use_mem_eff_path=False. Official decode rate =
512 / (median time of generating 576 tokens − median time of generating 64), after a warm-up run
that compiles the Triton kernels and captures the CUDA graphs (kept for the shorter runs), so the
prompt and the capture cancel — the method of issue 19's table. Each official case runs in its own
process (GPU memory freed, a crash isolated). A budget (seconds, default 540) skips what would
start after it, and says so in the table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# falcon-mamba-7b before mamba2-2.7b: its Q4_K target counts more than mamba2's second official pair if the budget runs short
SHAPES = ['mamba-2.8b', 'falcon-mamba-7b', 'mamba2-2.7b']
OFFICIAL_SHAPES = ['mamba-2.8b', 'mamba2-2.7b', 'mamba-130m', 'mamba2-130m']
# the storage formats the studio runs at a shape when it is not in --formats' default list's spirit (small models: fp32 and f16)
SHAPE_FORMATS = {'mamba-130m': ['f32', 'f16'], 'mamba2-130m': ['f32', 'f16']}
# issue 17's and issue 19's decode targets (tok/s, batch 1, H200)
TARGETS = {('mamba-2.8b', 'f16'): 500, ('mamba-2.8b', 'q8_0'): 800, ('mamba-2.8b', 'q4_k'): 1000, ('falcon-mamba-7b', 'q4_k'): 400,
           ('mamba2-2.7b', 'f16'): 500, ('mamba-130m', 'f16'): 2000, ('mamba2-130m', 'f16'): 2000}
# mamba_ssm configs of the same shapes as app/bench/bench.ts SHAPES (state-spaces/mamba-2.8b and
# state-spaces/mamba2-2.7b config.json: vocab 50277 padded to 50280 / 50288).
OFFICIAL = {
    'mamba-2.8b': dict(d_model=2560, d_intermediate=0, n_layer=64, vocab_size=50277, ssm_cfg={'layer': 'Mamba1', 'd_state': 16},
                       rms_norm=True, residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=8, tie_embeddings=True),
    'mamba2-2.7b': dict(d_model=2560, d_intermediate=0, n_layer=64, vocab_size=50277,
                        ssm_cfg={'layer': 'Mamba2', 'd_state': 128, 'headdim': 64, 'ngroups': 1, 'chunk_size': 256, 'use_mem_eff_path': False},
                        rms_norm=True, residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=16, tie_embeddings=True),
    # state-spaces/mamba-130m and mamba2-130m config.json
    'mamba-130m': dict(d_model=768, d_intermediate=0, n_layer=24, vocab_size=50277, ssm_cfg={'layer': 'Mamba1', 'd_state': 16},
                       rms_norm=True, residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=8, tie_embeddings=True),
    'mamba2-130m': dict(d_model=768, d_intermediate=0, n_layer=24, vocab_size=50277,
                        ssm_cfg={'layer': 'Mamba2', 'd_state': 128, 'headdim': 64, 'ngroups': 1, 'chunk_size': 256, 'use_mem_eff_path': False},
                        rms_norm=True, residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=16, tie_embeddings=True),
}
PROMPT = 8
SHORT, LONG = 64, 576


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def import_official(notes: list[str]):
    """mamba_ssm's MambaConfig and MambaLMHeadModel, and its version. Where the package does not import
    as it is (v2.3.2's selective_scan_interface imports the compiled selective_scan_cuda unconditionally;
    its __init__ imports Mamba3's kernels), a stand-in selective_scan_cuda module (whose use raises) is
    put in its place and the package's __init__ is bypassed, as scripts/golden/make_mamba_ssm_golden.py
    does; nothing this bench runs calls the compiled op (the prompt's scan is patched to
    selective_scan_ref below)."""
    import importlib
    import importlib.util
    import re
    import types
    try:
        import mamba_ssm
        from mamba_ssm.models.config_mamba import MambaConfig
        from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
        return MambaConfig, MambaLMHeadModel, getattr(mamba_ssm, '__version__', '?')
    except ImportError as e:
        notes.append(f'mamba_ssm did not import as a package ({e}); imported its modules without its __init__')
    if importlib.util.find_spec('selective_scan_cuda') is None:
        stub = types.ModuleType('selective_scan_cuda')

        def missing(*_args, **_kwargs):
            raise RuntimeError('selective_scan_cuda is a stand-in here (no compiled extension)')
        stub.fwd = stub.bwd = missing
        sys.modules['selective_scan_cuda'] = stub
        notes.append('selective_scan_cuda: a stand-in module (not called)')
    for name in [n for n in sys.modules if n == 'mamba_ssm' or n.startswith('mamba_ssm.')]:
        del sys.modules[name]
    spec = importlib.util.find_spec('mamba_ssm')
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError('mamba_ssm is not on PYTHONPATH (set MAMBA_SSM_SRC to the folder holding mamba_ssm/)')
    pkg = types.ModuleType('mamba_ssm')
    pkg.__path__ = list(spec.submodule_search_locations)
    init = os.path.join(pkg.__path__[0], '__init__.py')
    found = re.search(r'__version__\s*=\s*["\']([^"\']+)', open(init).read()) if os.path.exists(init) else None
    pkg.__version__ = found.group(1) if found else '?'
    sys.modules['mamba_ssm'] = pkg
    try:
        importlib.import_module('mamba_ssm.modules.mamba3')
    except Exception:  # noqa: BLE001 (Mamba3's own kernels: not used here)
        stub3 = types.ModuleType('mamba_ssm.modules.mamba3')
        stub3.Mamba3 = None
        sys.modules['mamba_ssm.modules.mamba3'] = stub3
    from mamba_ssm.models.config_mamba import MambaConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
    return MambaConfig, MambaLMHeadModel, pkg.__version__


def official_case(shape: str, dtype_name: str, repeats: int) -> dict:
    """Runs in a child process: one mamba_ssm model, its decode rate. Prints one JSON line."""
    import torch

    notes: list[str] = []
    MambaConfig, MambaLMHeadModel, version = import_official(notes)
    import mamba_ssm.modules.mamba_simple as mamba_simple
    try:
        import selective_scan_cuda
        compiled = hasattr(selective_scan_cuda, '__file__')
    except ImportError:
        compiled = False
    if not compiled:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_ref
        mamba_simple.selective_scan_fn = selective_scan_ref
        notes.append('Mamba-1 prompt through mamba_ssm selective_scan_ref (cancels in the rate)')
    if getattr(mamba_simple, 'selective_state_update', None) is None:
        notes.append('selective_state_update unavailable: PyTorch decode step')
    try:
        import causal_conv1d  # noqa: F401
        notes.append('causal_conv1d installed')
    except ImportError:
        notes.append('no causal_conv1d: PyTorch conv step')
    dtype = {'fp32': torch.float32, 'bf16': torch.bfloat16}[dtype_name]
    torch.manual_seed(0)
    model = MambaLMHeadModel(MambaConfig(**OFFICIAL[shape]), device='cuda', dtype=dtype).eval()
    vocab = model.lm_head.weight.shape[0]
    params = sum(p.numel() for p in model.parameters())
    prompt = torch.randint(0, vocab, (1, PROMPT), device='cuda')

    def generate(n: int) -> float:
        torch.cuda.synchronize()
        t = time.perf_counter()
        out = model.generate(prompt, max_length=PROMPT + n, cg=True, top_k=1)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        got = out.shape[1] - PROMPT
        if got != n:
            raise RuntimeError(f'generated {got} tokens, asked for {n}')
        return dt

    with torch.inference_mode():
        t0 = time.perf_counter()
        generate(LONG)  # Triton compiles, CUDA graph capture (max_length LONG; reused by the shorter runs)
        warm = time.perf_counter() - t0
        times = {SHORT: [], LONG: []}
        for _ in range(repeats):
            for n in (SHORT, LONG):
                times[n].append(generate(n))
    short, long = median(times[SHORT]), median(times[LONG])
    return {
        'side': 'official', 'shape': shape, 'weights': dtype_name, 'decode_tok_s': (LONG - SHORT) / (long - short),
        'times_s': {str(k): v for k, v in times.items()}, 'warmup_s': warm, 'parameters': params,
        'gpu_memory_bytes': {'weights': sum(p.numel() * p.element_size() for p in model.parameters()), 'max_allocated': torch.cuda.max_memory_allocated()},
        'mamba_ssm': version, 'torch': torch.__version__, 'device': torch.cuda.get_device_name(0), 'notes': notes,
    }


def studio_cli() -> list[str]:
    run = os.path.join(ROOT, '.devbench', 'run.py')
    if os.path.exists(run):
        return [sys.executable, run]
    node = shutil.which('node')
    if node and os.path.exists(os.path.join(ROOT, 'dist', 'cli', 'cli.js')):
        return [node, os.path.join(ROOT, 'dist', 'cli', 'cli.js')]
    raise RuntimeError('no .devbench/run.py (tooling/bench-bundle.sh) and no node + dist/cli/cli.js (npm run build:cli)')


class Run:
    def __init__(self, out: str, budget: float):
        self.out, self.budget, self.start = out, budget, time.time()
        self.rows: list[dict] = []
        self.log = open(os.path.join(out, 'bench17.log'), 'w')

    def left(self) -> float:
        return self.budget - (time.time() - self.start)

    def say(self, text: str):
        print(text, flush=True)
        self.log.write(text + '\n')
        self.log.flush()

    def call(self, what: str, args: list[str], timeout: float, env=None) -> subprocess.CompletedProcess | None:
        limit = min(timeout, self.left())
        if limit < 20:
            self.say(f'skipped {what}: {self.left():.0f} s of the budget left')
            return None
        self.say(f'== {what} (timeout {limit:.0f} s): {" ".join(args)}')
        t = time.time()
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=limit, env=env, cwd=ROOT)
        except subprocess.TimeoutExpired as e:
            self.say(f'timed out after {time.time() - t:.0f} s; stderr tail:\n{(e.stderr or b"")[-1500:]!s}')
            return None
        self.say(f'rc {r.returncode} after {time.time() - t:.0f} s; stderr tail:\n{r.stderr[-2500:]}')
        return r


def studio(run: Run, shape: str, formats: list[str], args) -> None:
    out = os.path.join(run.out, f'studio-{shape}.json')
    cmd = [*studio_cli(), 'bench', '--shape', shape, '--weights', ','.join(formats), '--prefill', '16', '--chunk', '16',
           '--decode', str(args.decode), '--repeats', str(args.repeats), '--warmup', '1', '--no-ceilings', '--no-breakdown', '--out', out,
           *args.studio_args.split()]
    r = run.call(f'studio {shape}', cmd, args.studio_timeout)
    if r is None or r.returncode != 0 or not os.path.exists(out):
        run.rows += [{'side': 'studio', 'shape': shape, 'weights': f, 'error': 'failed or skipped (bench17.log)'} for f in formats]
        return
    results = json.load(open(out))
    for res in results if isinstance(results, list) else [results]:
        run.rows.append({
            'side': 'studio', 'shape': shape, 'weights': res['dtype'] + (f" grid {res['grid_setting']}" if res.get('grid_setting') not in (None, 'off') else '') + (f" x_proj {res['decode_xproj']}" if res.get('decode_xproj') else ''), 'decode_tok_s': res['decode_tok_s'], 'step_cpu_ms': res.get('decode_step_cpu_ms'), 'step_gpu_ms': res.get('decode_step_gpu_ms'), 'weight_formats': res.get('weight_formats'),
            'gpu_memory_bytes': res['gpu_memory_bytes'], 'memory_plan': res.get('memory_plan'), 'adapter': res.get('adapter'), 'notes': res.get('notes', []),
        })


def official(run: Run, shape: str, dtype: str, args) -> None:
    env = dict(os.environ)
    src = os.environ.get('MAMBA_SSM_SRC') or (os.path.join(ROOT, '.devbench', 'mamba') if os.path.isdir(os.path.join(ROOT, '.devbench', 'mamba')) else '')
    if src:
        env['PYTHONPATH'] = os.pathsep.join([os.path.abspath(src), *filter(None, [env.get('PYTHONPATH')])])
    r = run.call(f'official {shape} {dtype}', [sys.executable, os.path.abspath(__file__), '--official-case', shape, dtype, '--repeats', str(args.repeats)], args.official_timeout, env)
    line = next((x for x in reversed((r.stdout if r else '').strip().splitlines()) if x.startswith('{')), None)
    if r is None or r.returncode != 0 or line is None:
        run.rows.append({'side': 'official', 'shape': shape, 'weights': dtype, 'error': 'failed or skipped (bench17.log)'})
        return
    run.rows.append(json.loads(line))


def gb(x):
    return f'{x / 1e9:.3f}' if isinstance(x, (int, float)) else ''


def table(rows: list[dict]) -> str:
    best = {}
    for r in rows:
        if r['side'] == 'official' and 'decode_tok_s' in r:
            best[r['shape']] = max(best.get(r['shape'], 0), r['decode_tok_s'])
    lines = [
        '| shape | implementation | weights | GPU formats | decode tok/s | ÷ best official | target | CPU ms a step | GPU ms a step | GPU weights GB | weights read GB/s | plan total GB (prefill chunk 16) |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ]
    for r in rows:
        rate = r.get('decode_tok_s')
        ratio = f'{rate / best[r["shape"]]:.2f}' if rate and r['side'] == 'studio' and r['shape'] in best else ''
        target = TARGETS.get((r['shape'], r['weights'].split(' grid ')[0]))
        target_text = f'≥ {target:,} tok/s: {"met" if rate and rate >= target else "missed"}' if target else ''
        plan = (r.get('memory_plan') or {}).get('total')
        weights = (r.get('gpu_memory_bytes') or {}).get('weights')  # read once per decoded token
        if (r['shape'], r['weights']) == ('falcon-mamba-7b', 'q4_k_m') and plan:
            # issue 17: a falcon-mamba-7b Q4_K_M file loads in < 6 GB of GPU memory (the plan: weights + activations + one session)
            target_text = f'< 6 GB GPU memory: {"met" if plan < 6e9 else "missed"}'
        lines.append(
            f"| {r['shape']} | {'Mamba Studio (WebGPU)' if r['side'] == 'studio' else 'official mamba_ssm ' + r.get('mamba_ssm', '')} | {r['weights']} | "
            f"{r.get('weight_formats', '')} | {f'{rate:,.1f}' if rate else r.get('error', '')} | {ratio} | {target_text} | "
            f"{f'{cpu:.3f}' if (cpu := r.get('step_cpu_ms')) is not None else ''} | "
            f"{f'{gpu:.3f}' if (gpu := r.get('step_gpu_ms')) is not None else ''} | "
            f"{gb(weights)} | {f'{weights * rate / 1e9:,.0f}' if weights and rate else ''} | {gb(plan)} |"
        )
    return '\n'.join(lines) + '\n'


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument('--out', default=os.environ.get('OUT', 'bench/out'))
    p.add_argument('--shapes', default=','.join(SHAPES))
    p.add_argument('--formats', default='f16,q8_0,q4_k')
    p.add_argument('--decode', type=int, default=256)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--budget', type=float, default=540)
    p.add_argument('--studio-timeout', type=float, default=240)
    p.add_argument('--official-timeout', type=float, default=150)
    p.add_argument('--studio-args', default='', help="more arguments for the studio's bench, e.g. '--grid off,auto'")
    p.add_argument('--no-official', action='store_true')
    p.add_argument('--no-studio', action='store_true')
    p.add_argument('--official-case', nargs=2, metavar=('SHAPE', 'DTYPE'))
    args = p.parse_args()
    if args.official_case:
        print(json.dumps(official_case(*args.official_case, args.repeats)), flush=True)
        return 0
    os.makedirs(args.out, exist_ok=True)
    run = Run(args.out, args.budget)
    formats = args.formats.split(',')
    # The official runs of a shape next to the studio's, so each shape gets both even if the budget runs out.
    for shape in args.shapes.split(','):
        if not args.no_official and shape in OFFICIAL_SHAPES:
            for dtype in ('fp32', 'bf16'):
                official(run, shape, dtype, args)
        if not args.no_studio:
            shape_formats = SHAPE_FORMATS.get(shape, formats)
            studio(run, shape, shape_formats + (['q4_k_m'] if shape == 'falcon-mamba-7b' and 'q4_k_m' not in shape_formats else []), args)
    md = table(run.rows)
    env = {'date': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()), 'host': platform.node(), 'python': sys.version.split()[0],
           'elapsed_s': round(time.time() - run.start, 1), 'decode_tokens_studio': args.decode, 'repeats': args.repeats,
           'official_method': f'({LONG} - {SHORT}) / (median t({LONG}) - median t({SHORT})), prompt {PROMPT} tokens, cg=True, greedy'}
    json.dump({'env': env, 'rows': run.rows, 'table_md': md}, open(os.path.join(args.out, 'bench17.json'), 'w'), indent=1)
    with open(os.path.join(args.out, 'bench17.md'), 'w') as f:
        f.write(f"# Issue 17 decode bench, {env['date']} (batch 1, random weights)\n\n{md}\n")
    run.say(md)
    return 0 if all('error' not in r for r in run.rows) else 1


if __name__ == '__main__':
    sys.exit(main())
