"""Issue 19's prefill targets, measured in one run on one GPU: the studio's bench (random f16 weights
made on the GPU) at 2,048 and 8,192 tokens with the fp32 prefill and with the int8 prefill
(app/model/int8-prefill.ts: the projections on the int8 tensor cores; its accuracy against fp32 is in
the bench's JSON), and the official mamba_ssm's prefill (fp32 and bf16) at the Mamba-2 shapes, one
after the other. Writes OUT/prefill.json (every row), OUT/prefill.md (a table of prefill tok/s with
the ratio to the better official number and the issue's target), OUT/studio-<shape>.json and
OUT/prefill.log. Run by tooling/bench-prefill.sh.

    python3 tooling/bench-prefill.py --out DIR [--shapes a,b] [--tokens 2048,8192] [--repeats 3]
        [--budget 480] [--no-official] [--no-studio] [--breakdown mamba-2.8b,…] [--matmul fp32,int8]
        [--official-dtypes bf16,fp32]

Official prefill rate = T / median time of `model(input_ids, num_last_tokens=1)` over T random
tokens (CUDA synchronized; after one warm-up that compiles the Triton kernels), the last position's
logits only, as the studio's prefill. Mamba-2 runs with use_mem_eff_path=False (its chunked scan
in Triton). Mamba-1's prompt pass needs mamba_ssm's compiled selective_scan_cuda, which this
machine does not have (its reference fallback is a Python loop over tokens, not the official
speed), so the Mamba-1 shapes are measured on the studio side only; the issue's target there is
absolute (≥ 25k tok/s at 2,048 for mamba-2.8b). The studio, official-case subprocesses and budget
work as in tooling/bench-17.py, whose helpers this imports.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location('bench17', os.path.join(HERE, 'bench-17.py'))
b17 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(b17)

SHAPES = ['mamba-2.8b', 'mamba2-2.7b', 'mamba2-130m', 'mamba-130m']
OFFICIAL_PREFILL = ['mamba2-2.7b', 'mamba2-130m']
# issue 19's prefill targets (tok/s at T tokens, batch 1, H200): the official bf16 numbers of its table, and mamba-2.8b's
TARGETS = {('mamba2-130m', 2048): 66_823, ('mamba2-130m', 8192): 239_761, ('mamba2-2.7b', 2048): 22_809, ('mamba2-2.7b', 8192): 51_400,
           ('mamba-2.8b', 2048): 25_000}


def official_prefill_case(shape: str, dtype_name: str, tokens: list[int], repeats: int) -> dict:
    """Runs in a child process: one mamba_ssm model, its prefill rate at each T. Prints one JSON line."""
    import torch

    notes: list[str] = []
    MambaConfig, MambaLMHeadModel, version = b17.import_official(notes)
    dtype = {'fp32': torch.float32, 'bf16': torch.bfloat16}[dtype_name]
    torch.manual_seed(0)
    model = MambaLMHeadModel(MambaConfig(**b17.OFFICIAL[shape]), device='cuda', dtype=dtype).eval()
    vocab = model.lm_head.weight.shape[0]
    rates, times = {}, {}
    with torch.inference_mode():
        for T in tokens:
            ids = torch.randint(0, vocab, (1, T), device='cuda')
            model(ids, num_last_tokens=1)  # warm-up: Triton compiles for this length
            torch.cuda.synchronize()
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                model(ids, num_last_tokens=1)
                torch.cuda.synchronize()
                ts.append(time.perf_counter() - t)
            times[str(T)] = ts
            rates[str(T)] = T / b17.median(ts)
    return {'side': 'official', 'shape': shape, 'weights': dtype_name, 'prefill_tok_s': rates, 'times_s': times,
            'max_allocated': torch.cuda.max_memory_allocated(), 'mamba_ssm': version, 'torch': torch.__version__,
            'device': torch.cuda.get_device_name(0), 'notes': notes}


def studio(run, shape: str, args) -> None:
    out = os.path.join(run.out, f'studio-{shape}.json')
    cmd = [*b17.studio_cli(), 'bench', '--shape', shape, '--weights', 'f16', '--prefill', args.tokens, '--decode', '8',
           '--repeats', str(args.repeats), '--warmup', '1', '--no-ceilings', '--prefill-matmul', args.matmul, '--out', out, *args.studio_args.split()]
    if shape not in args.breakdown.split(','):
        cmd.append('--no-breakdown')
    r = run.call(f'studio {shape}', cmd, args.studio_timeout)
    if r is None or r.returncode != 0 or not os.path.exists(out):
        run.rows.append({'side': 'studio', 'shape': shape, 'error': 'failed or skipped (prefill.log)'})
        return
    results = json.load(open(out))
    for res in results if isinstance(results, list) else [results]:
        run.rows.append({'side': 'studio', 'shape': shape, 'weights': res['dtype'], 'prefill_matmul': res.get('prefill_matmul', 'fp32'),
                         'setting': setting_of(res), 'prefill_tok_s': res['prefill_tok_s'], 'int8_prefill': res.get('int8_prefill'), 'adapter': res.get('adapter')})


# The bench's forced kernel settings a result names (--studio-args sweeps), e.g. "prefill_scan channel".
SETTING_KEYS = ('prefill_scan', 'ssd_tile', 'tc_kernel', 'conv_kernel', 'scan_chunk', 'ssd_chunk', 'dawn_features')


def setting_of(res: dict) -> str:
    return ', '.join(f"{k} {','.join(v) if isinstance(v, list) else v}" for k in SETTING_KEYS if (v := res.get(k)) is not None)


def official(run, shape: str, dtype: str, args) -> None:
    env = dict(os.environ)
    src = os.environ.get('MAMBA_SSM_SRC') or (os.path.join(b17.ROOT, '.devbench', 'mamba') if os.path.isdir(os.path.join(b17.ROOT, '.devbench', 'mamba')) else '')
    if src:
        env['PYTHONPATH'] = os.pathsep.join([os.path.abspath(src), *filter(None, [env.get('PYTHONPATH')])])
    cmd = [sys.executable, os.path.abspath(__file__), '--official-case', shape, dtype, '--tokens', args.tokens, '--repeats', str(args.repeats)]
    r = run.call(f'official {shape} {dtype}', cmd, args.official_timeout, env)
    line = next((x for x in reversed((r.stdout if r else '').strip().splitlines()) if x.startswith('{')), None)
    if r is None or r.returncode != 0 or line is None:
        run.rows.append({'side': 'official', 'shape': shape, 'weights': dtype, 'error': 'failed or skipped (prefill.log)'})
        return
    run.rows.append(json.loads(line))


def table(rows: list[dict], tokens: list[int]) -> str:
    best = {}
    for r in rows:
        if r['side'] == 'official' and 'prefill_tok_s' in r:
            for T, v in r['prefill_tok_s'].items():
                best[(r['shape'], int(T))] = max(best.get((r['shape'], int(T)), 0), v)
    head = '| shape | implementation | weights | prefill products | ' + ' | '.join(f'@{T:,} tok/s | ÷ best official | target' for T in tokens) + ' | int8 logit error (median) |'
    lines = [head, '|' + ' --- |' * (5 + 3 * len(tokens))]
    for r in rows:
        cells = []
        for T in tokens:
            rate = (r.get('prefill_tok_s') or {}).get(str(T))
            ratio = f'{rate / best[(r["shape"], T)]:.2f}' if rate and r['side'] == 'studio' and (r['shape'], T) in best else ''
            target = TARGETS.get((r['shape'], T)) if r['side'] == 'studio' else None
            cells += [f'{rate:,.0f}' if rate else r.get('error', ''), ratio, f'≥ {target:,}: {"met" if rate and rate >= target else "missed"}' if target else '']
        acc = (r.get('int8_prefill') or {}).get('accuracy') or {}
        impl = 'Mamba Studio (WebGPU)' if r['side'] == 'studio' else 'official mamba_ssm ' + r.get('mamba_ssm', '')
        accuracy = f"{acc['logit_rel_err_median']:.2e} (top-1 {acc['top1_agree']}/{acc['prompts']})" if acc else ''
        products = r.get('prefill_matmul', '') + (f" ({r['setting']})" if r.get('setting') else '')
        lines.append(f"| {r['shape']} | {impl} | {r.get('weights', '')} | {products} | " + ' | '.join(cells) + f' | {accuracy} |')
    return '\n'.join(lines) + '\n'


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument('--out', default=os.environ.get('OUT', 'bench/out'))
    p.add_argument('--shapes', default=','.join(SHAPES))
    p.add_argument('--tokens', default='2048,8192')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--budget', type=float, default=480)
    p.add_argument('--breakdown', default='mamba-2.8b,mamba2-130m')
    p.add_argument('--studio-timeout', type=float, default=240)
    p.add_argument('--official-timeout', type=float, default=150)
    p.add_argument('--matmul', default='fp32,int8', help="the studio's prefill products (its bench's --prefill-matmul)")
    p.add_argument('--official-dtypes', default='bf16,fp32', help='the official runs (bf16, fp32 or both)')
    p.add_argument('--studio-args', default='', help="more arguments for the studio's bench, e.g. '--prefill-scan parallel,channel'")
    p.add_argument('--no-official', action='store_true')
    p.add_argument('--no-studio', action='store_true')
    p.add_argument('--official-case', nargs=2, metavar=('SHAPE', 'DTYPE'))
    args = p.parse_args()
    tokens = [int(t) for t in args.tokens.split(',')]
    if args.official_case:
        print(json.dumps(official_prefill_case(*args.official_case, tokens, args.repeats)), flush=True)
        return 0
    os.makedirs(args.out, exist_ok=True)
    run = b17.Run(args.out, args.budget)
    run.log.close()
    os.remove(os.path.join(args.out, 'bench17.log'))
    run.log = open(os.path.join(args.out, 'prefill.log'), 'w')
    for shape in args.shapes.split(','):
        if not args.no_studio:
            studio(run, shape, args)
        if not args.no_official and shape in OFFICIAL_PREFILL:
            for dtype in args.official_dtypes.split(','):
                official(run, shape, dtype, args)
    md = table(run.rows, tokens)
    env = {'date': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()), 'host': platform.node(), 'python': sys.version.split()[0],
           'elapsed_s': round(time.time() - run.start, 1), 'repeats': args.repeats,
           'official_method': 'T / median time of model(ids, num_last_tokens=1) after a warm-up, CUDA synchronized'}
    json.dump({'env': env, 'rows': run.rows, 'table_md': md}, open(os.path.join(args.out, 'prefill.json'), 'w'), indent=1)
    with open(os.path.join(args.out, 'prefill.md'), 'w') as f:
        f.write(f"# Issue 19 prefill bench, {env['date']} (batch 1, random weights)\n\n{md}\n")
    run.say(md)
    return 0 if all('error' not in r for r in run.rows) else 1


if __name__ == '__main__':
    sys.exit(main())
