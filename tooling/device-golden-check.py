"""Runs the studio's CLI (Dawn, on the GPU machine) on the issue-16 and issue-22 (hybrid) fixtures and compares its trace (logits, Δ, B, C) and greedy ids with their goldens. Run by tooling/device-golden-check.sh."""
import json, os, subprocess, sys, time
import torch
from safetensors.torch import load_file

OUT = os.environ['OUT']
CASES = [
    ('test/fixtures/golden/falcon-mamba-tiny', None),
    ('test/fixtures/golden/falcon-mamba-odd', None),
    ('test/fixtures/golden/mamba2-8groups', None),
    ('test/fixtures/golden-mamba-ssm/mamba2-ssm-8groups', None),
    ('test/fixtures/golden-mamba-ssm/codestral-tiny', None),
    ('test/fixtures/pytorch-bin/mamba-ssm-tied-f32', 'bin'),
    ('test/fixtures/pytorch-bin/mamba-ssm-tied-bf16', 'bin'),
    ('test/fixtures/pytorch-bin/hf-sharded-f16', 'bin'),
    # issue 22: hybrids (blocks numbered as the engine numbers them; the prompt is input_ids)
    ('test/fixtures/golden-hybrid/nemotron-h-tiny', None),
    ('test/fixtures/golden-hybrid/nemotron-h-odd', None),
    ('test/fixtures/golden-hybrid/granite-h-rope', None),
    ('test/fixtures/golden-hybrid/granite-h-nope', None),
    ('test/fixtures/golden-hybrid/mamba2-attn-ssm', None),
    ('test/fixtures/golden-hybrid/mamba2-attn-conv-ssm', None),
]

def cli(*args):
    t = time.time()
    r = subprocess.run([sys.executable, '.devbench/run.py', *args], capture_output=True, text=True)
    return r, time.time() - t

def rel(a, b):
    a = a.double().flatten(); b = b.double().flatten()
    if a.numel() != b.numel():
        return f'size {a.numel()} vs {b.numel()}'
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))

results = []
r, _ = cli('gpu'); print(r.stdout.strip()[:400], r.stderr.strip()[:400])
for case, sub in CASES:
    name = os.path.basename(case)
    model = os.path.join(case, sub) if sub else case
    g = load_file(os.path.join(case, 'golden.safetensors'))
    ids = g['input_ids'].flatten().tolist()
    out = os.path.join(OUT, f'{name}.trace.safetensors')
    r, dt = cli('trace', '--model', model, '--input-ids', ','.join(map(str, ids)), '--out', out)
    row = {'case': name, 'trace_rc': r.returncode, 'trace_s': round(dt, 1)}
    if r.returncode != 0:
        row['stderr'] = r.stderr[-600:]
        results.append(row); print(row); continue
    t = load_file(out)
    row['logits'] = rel(t['logits'], g['logits'])
    worst = {}
    for k in g:
        if k.startswith('layers.') and k.split('.')[-1] in ('delta', 'B', 'C') and k in t:
            worst[k] = rel(t[k], g[k])
    row['delta_B_C_worst'] = max((v for v in worst.values() if isinstance(v, float)), default=None)
    row['delta_B_C_mismatch'] = {k: v for k, v in worst.items() if not isinstance(v, float)}
    if 'generated_ids' in g:
        p = g.get('generate.prompt_ids', g['input_ids']).flatten().tolist(); want = g['generated_ids'].flatten().tolist()
        gen = want[len(p):] if want[:len(p)] == p else want
        r, dt = cli('run', '--model', model, '--input-ids', ','.join(map(str, p)), '--max-tokens', str(len(gen)), '--greedy', '--ignore-eos', '--json')
        try:
            got = json.loads(r.stdout.strip().splitlines()[-1])['ids']
        except Exception:
            got = None; row['run_stderr'] = r.stderr[-400:]
        row['greedy_identical'] = got == gen
        row['greedy_len'] = len(gen)
    results.append(row); print(row, flush=True)
json.dump(results, open(os.path.join(OUT, 'h200-check.json'), 'w'), indent=1)
