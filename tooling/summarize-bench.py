#!/usr/bin/env python3
"""Markdown tables from `bench` JSON files (npm run bench / the CLI's bench --out), for bench/RESULTS.md.

    python3 tooling/summarize-bench.py DIR_OR_FILE... [--kernels N]

Every JSON file found (a result or a list of results; files of other shapes are skipped with a
line saying so) gives one row a result: its model, storage format, the settings a sweep forced
(--prefill-scan, --ssd-tile, --decode-xproj, --dawn-features, ...), prefill tokens/s at each
length, decode tokens/s (greedy, and with the app's sampling), a decode step's CPU and GPU ms, a
sampling's GPU ms (eighteenth session on: with the first stage's candidates / over the whole
vocabulary) and the decode checks (grid, folded x_proj). With --kernels N (default
8), each result with a per-kernel breakdown also gets its N slowest kernels of the longest prefill
and of decode, in µs a call (timestamp queries, one pass per dispatch: each call carries the
pass's overhead, so compare them with each other, not with whole-call rates; from the eighteenth
session a kernel's time runs from the end of the pass before to the end of its own, before it from
its pass's beginning, which could include the tail of the kernel before).
"""
import argparse
import json
import os
import sys

# Result fields a sweep sets (app/cli.ts), shown as "name=value" in the settings column.
SETTINGS = ['matvec', 'grid_setting', 'scan_chunk', 'scan_lanes', 'prefill_scan', 'ssd_chunk', 'ssd_tile', 'split_groups',
            'int8_split_groups', 'tc_kernel', 'conv_kernel', 'decode_xproj', 'decode_loads', 'decode_depth', 'decode_batch', 'dawn_features']


def results_in(path):
    """(file, result) for each bench result in the JSON files under `path`."""
    files = [path] if os.path.isfile(path) else sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith('.json'))
    for f in files:
        try:
            data = json.load(open(f))
        except (OSError, ValueError) as e:
            print(f'<!-- {f}: not read ({e}) -->', file=sys.stderr)
            continue
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(r, dict) and 'prefill_tok_s' in r and 'decode_tok_s' in r for r in items):
            print(f'<!-- {f}: not a bench result, skipped -->', file=sys.stderr)
            continue
        for r in items:
            yield f, r


def settings_of(r):
    out = []
    for k in SETTINGS:
        v = r.get(k)
        if v in (None, 'off', []):
            continue
        out.append(f"{k}={','.join(v) if isinstance(v, list) else v}")
    if r.get('prefill_matmul') == 'int8':
        out.append('int8 prefill')
    return ' '.join(out)


def checks_of(r):
    out = []
    g = r.get('grid_decode')
    if g:
        out.append(f"grid {g['tokens_equal']}/{g['tokens']}{' ABORTED' if g.get('aborted') else ''}")
    x = r.get('decode_xproj_check')
    if x:
        out.append(f"folded x_proj {x['tokens_equal']}/{x['tokens']}")
    # The first prefill of a session and the same one again far apart (bench.ts prefillSplitNote).
    for t, split in sorted((r.get('prefill_split') or {}).items(), key=lambda kv: int(kv[0])):
        fast = min(split['call_ms'], split['again_ms'])
        if fast > 0 and abs(split['call_ms'] - split['again_ms']) / fast > 0.15:
            out.append(f"NOISY @{int(t):,}: call {split['call_ms']:.1f} / again {split['again_ms']:.1f} ms")
    return ', '.join(out)


def step_ms_of(r, key):
    """A decode step's ms (bench.ts decode_step_cpu_ms, from the sixteenth session; decode_step_gpu_ms, timestamps of its passes, from the seventeenth) and its share of a token."""
    ms = r.get(key)
    if ms is None:
        return ''
    share = f" ({100 * ms * r['decode_tok_s'] / 1000:.0f} %)" if r['decode_tok_s'] > 0 else ''
    return f"{ms:.3f}{share}"


def sampling_of(r):
    """Decode tok/s with the app's sampling, and a sampling's GPU ms (bench.ts sampler_gpu_ms): with candidates / whole vocabulary."""
    rate = f"{r['decode_sampled_tok_s']:,.1f}" if r.get('decode_sampled_tok_s') else ''
    ms = r.get('sampler_gpu_ms')
    if not ms:
        return rate, ''
    d, g = ms['default_sampling'], ms['greedy']
    return rate, f"{d['candidates']:.3f} / {d['whole_vocabulary']:.3f}; greedy {g['candidates']:.3f} / {g['whole_vocabulary']:.3f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('paths', nargs='+')
    p.add_argument('--kernels', type=int, default=8)
    args = p.parse_args()
    rows = [fr for path in args.paths for fr in results_in(path)]
    if not rows:
        sys.exit('no bench results found')
    lengths = sorted({int(t) for _, r in rows for t in r['prefill_tok_s']})
    print('| file | model | weights | settings | ' + ' | '.join(f'prefill @{t:,}' for t in lengths) +
          " | decode tok/s | CPU ms a step (% of a token) | GPU ms a step (% of a token) | decode tok/s, app's sampling | sampling GPU ms: candidates / whole vocabulary | checks |")
    print('| --- ' * (10 + len(lengths)) + '|')
    for f, r in rows:
        rates = [f"{r['prefill_tok_s'][str(t)]:,.0f}" if str(t) in r['prefill_tok_s'] else '' for t in lengths]
        print(f"| {os.path.basename(f)} | {r.get('model', '')} | {r.get('dtype', '')} | {settings_of(r)} | " + ' | '.join(rates) + f" | {r['decode_tok_s']:,.1f} | {step_ms_of(r, 'decode_step_cpu_ms')} | {step_ms_of(r, 'decode_step_gpu_ms')} | " + ' | '.join(sampling_of(r)) + f" | {checks_of(r)} |")
    if args.kernels <= 0:
        return
    for f, r in rows:
        kernels = r.get('kernels') or []
        if not kernels:
            continue
        longest = max((int(t) for t in r['prefill_tok_s']), default=0)
        print(f"\n{os.path.basename(f)}, {r.get('model', '')} {r.get('dtype', '')} {settings_of(r)}: slowest kernels, µs a call (calls a run)\n")
        for phase, prefix in (('prefill', f'prefill({longest}) '), ('decode', 'decode ')):
            picked = sorted((k for k in kernels if k['name'].startswith(prefix)), key=lambda k: -k['microseconds'] / max(k['count'], 1))[:args.kernels]
            if picked:
                print(f'- {phase}: ' + ', '.join(f"{k['name'][len(prefix):]} {k['microseconds'] / max(k['count'], 1):,.1f} ({k['count']})" for k in picked))


if __name__ == '__main__':
    main()
