/**
 * The attention mixer (app/arch/hybrid/attention.ts) and its kernels (app/kernels/attention.ts)
 * against the float64 references (app/kernels/attention.ref.ts, app/arch/hybrid/reference.ts) on
 * fresh random inputs of odd sizes: GQA (6 heads over 2 kv heads, head dim 24), RoPE on 16 of 24
 * dims, on all of them interleaved, or none; mamba_ssm's conv over q | k | v or none; fused or
 * separate projections with biases; f16 weights once. The KV cache is the state: prefill in
 * chunks, then one-token steps (general and fused decode), equals one pass of the reference; a
 * copied state continues identically; a knocked-out key is skipped by every later query, through later chunks and steps.
 */
import { describe, expect, it } from 'vitest';
import { attentionMixer } from '../../app/arch/hybrid/attention';
import type { AttentionConfig } from '../../app/arch/hybrid/config';
import { attentionRef } from '../../app/arch/hybrid/reference';
import { readBuffer, readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { attention, attentionProbs, ropeTable } from '../../app/kernels/attention';
import { causalAttentionRef, ropeRef } from '../../app/kernels/attention.ref';
import { submitDispatches } from '../../app/kernels/dispatch';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import type { MixerState } from '../../app/model/mixer';
import { rmsnorm } from '../../app/model/reference';
import { useTestGpu } from '../support/gpu';
import { copyState, mixerHarness, runMixer, runMixerDecode, type HarnessWeight } from '../support/mixer-harness';

/** fp32 dot products and softmax sums: relative error ≤ 1e-4, as for the other kernels. */
const TOL = 1e-4;
const EPS = 1e-5;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

const D = 29;
const H = 6;
const HKV = 2;
const HD = 24;
const QDIM = H * HD;
const KVDIM = HKV * HD;
const QKV = QDIM + 2 * KVDIM;

function config(o: Partial<AttentionConfig>): AttentionConfig {
  return { nHeads: H, nKvHeads: HKV, headDim: HD, rotaryDim: 16, ropeTheta: 10000, ropeInterleaved: false, scale: 1 / Math.sqrt(HD), names: { qkv: 'in_proj.weight', out: 'out_proj.weight' }, dConv: 0, capacity: 48, ...o };
}

/** Random weights for `cfg` (biases included), each drawn from its own seed. */
function weightsFor(cfg: AttentionConfig, s: number, format: HarnessWeight['format'] = 'f32'): Record<string, HarnessWeight> {
  const w = (n: number, k: number, scale: number): HarnessWeight => ({ values: randomF32(n, s + k, scale), format });
  const b = (n: number, k: number): HarnessWeight => ({ values: randomF32(n, s + k, 0.2) });
  const names = cfg.names;
  const out: Record<string, HarnessWeight> = {};
  if ('qkv' in names) {
    out[names.qkv] = w(QKV * D, 1, 0.5);
    out[names.qkv.replace('.weight', '.bias')] = b(QKV, 2);
  } else {
    out[names.q] = w(QDIM * D, 3, 0.5);
    out[names.k] = w(KVDIM * D, 4, 0.5);
    out[names.v] = w(KVDIM * D, 5, 0.5);
    out[names.k.replace('.weight', '.bias')] = b(KVDIM, 6);
  }
  out[names.out] = w(D * QDIM, 7, 0.2);
  out[names.out.replace('.weight', '.bias')] = b(D, 8);
  if (cfg.dConv > 0) {
    out['conv1d.weight'] = { values: randomF32(QKV * cfg.dConv, s + 9, 0.6) };
    out['conv1d.bias'] = b(QKV, 10);
  }
  return out;
}

const CASES: [string, Partial<AttentionConfig>, HarnessWeight['format']][] = [
  ['fused qkv, RoPE on 16 of 24 dims (rotate_half), no conv', {}, 'f32'],
  ['separate q/k/v in f16, no RoPE, conv 4', { rotaryDim: 0, dConv: 4, names: { q: 'q_proj.weight', k: 'k_proj.weight', v: 'v_proj.weight', out: 'o_proj.weight' } }, 'f16'],
  ['fused qkv, interleaved RoPE on all 24 dims, conv 4, scale 0.3', { rotaryDim: 24, ropeInterleaved: true, dConv: 4, scale: 0.3, ropeTheta: 500 }, 'f32'],
];

/** A buffer of `count` NaNs: outputs poisoned first, so unwritten elements show. */
const poisoned = (device: GPUDevice, label: string, count: number) => uploadF32(device, label, new Float32Array(count).fill(Number.NaN));

function rowsOf(a: ArrayLike<number>, from: number, to: number, width: number): Float64Array {
  return Float64Array.from({ length: (to - from) * width }, (_, i) => a[from * width + i] as number);
}

describe('attention mixer (Dawn)', () => {
  for (const [name, o, format] of CASES) {
    it(`${name}: chunks, steps and a copied state give the reference; a knocked-out key stays masked`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const caseSeed = seed + CASES.findIndex((c) => c[0] === name) * 100;
      const cfg = config(o);
      const h = mixerHarness(ctx, { dModel: D, maxTokens: 16, weights: weightsFor(cfg, caseSeed, format) });
      const mixer = attentionMixer(h.build, cfg);
      const T = 37;
      // The residual stream r and the block norm g: the mixer's input rows are rmsnorm(r)·g (the fused decode norms r itself).
      const r = randomF32(T * D, caseSeed + 50, 2);
      const g = randomF32(D, caseSeed + 51, 0.5).map((v) => v + 1);
      const normed = rmsnorm(Float64Array.from(r), T, D, g, EPS);
      const x = Float32Array.from(normed);
      const refOf = (knockToken: number) => attentionRef(cfg)({ config: h.build.config, weights: (n) => h.table.get(n), mixer: h.prefix, layer: 0, input: normed, tokens: T, knockToken });
      const ref = refOf(-1);
      const knocked = refOf(9);
      const states: MixerState[] = [];
      try {
        // Prefill in chunks 16 + 3 + 11 (flash prefill, split decode, prefill), then steps.
        const run = async (state: MixerState, from: number, to: number, knockRow: number | null = null) =>
          runMixer(ctx!, h, mixer, { tokens: to - from, input: x.subarray(from * D, to * D), state, knockRow });
        const state = mixer.newState();
        const knockedState = mixer.newState();
        states.push(state, knockedState);
        const chunks = [
          [0, 16],
          [16, 19],
          [19, 30],
        ];
        for (const [from, to] of chunks as [number, number][]) {
          expect(relativeError(await run(state, from, to), rowsOf(ref.output, from, to, D)), `chunk ${from}..${to} (seed ${caseSeed})`).toBeLessThanOrEqual(TOL);
          // Token 9 knocked out in the first chunk (row 9): every later query, in later chunks too, skips its key.
          expect(relativeError(await run(knockedState, from, to, from === 0 ? 9 : null), rowsOf(knocked.output, from, to, D)), `knocked chunk ${from}..${to} (seed ${caseSeed})`).toBeLessThanOrEqual(TOL);
        }
        // Steps: the state through the fused decode (block norm and residual add folded in), two
        // copies of it through the general path (T = 1), which agree exactly.
        const fork = copyState(ctx, state);
        const fork2 = copyState(ctx, state);
        states.push(fork, fork2);
        for (let t = 30; t < T; t++) {
          const expected = rowsOf(ref.output, t, t + 1, D);
          const a = await run(fork, t, t + 1);
          expect(relativeError(a, expected), `step ${t} (seed ${caseSeed})`).toBeLessThanOrEqual(TOL);
          expect(Array.from(await run(fork2, t, t + 1)), `the copied state, step ${t}`).toEqual(Array.from(a));
          const residual = r.subarray(t * D, (t + 1) * D);
          const after = await runMixerDecode(ctx, h, mixer, { residual, normWeight: g, eps: EPS, state });
          expect(relativeError(Float64Array.from(after, (v, i) => v - (residual[i] as number)), expected), `fused decode step ${t} (seed ${caseSeed})`).toBeLessThanOrEqual(TOL);
          expect(relativeError(await run(knockedState, t, t + 1), rowsOf(knocked.output, t, t + 1, D)), `knocked step ${t} (seed ${caseSeed})`).toBeLessThanOrEqual(TOL);
        }
        // Sanity of the test itself: the knockout changes later rows, not the earlier ones.
        expect(relativeError(rowsOf(knocked.output, 0, 9, D), rowsOf(ref.output, 0, 9, D))).toBe(0);
        expect(relativeError(rowsOf(knocked.output, 10, T, D), rowsOf(ref.output, 10, T, D))).toBeGreaterThan(1e-3);
      } finally {
        states.flat().forEach((b) => b.destroy());
        mixer.destroy();
        h.destroy();
      }
    });
  }

  it('taps attnQ / attnK over chunks, and attentionProbs of each head, give the reference probabilities (mask included)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const cfg = config({ dConv: 4 });
    const h = mixerHarness(ctx, { dModel: D, maxTokens: 16, weights: weightsFor(cfg, seed + 500) });
    const mixer = attentionMixer(h.build, cfg);
    const T = 21;
    const x = randomF32(T * D, seed + 550, 1);
    const ref = attentionRef(cfg)({ config: h.build.config, weights: (n) => h.table.get(n), mixer: h.prefix, layer: 0, input: Float64Array.from(x), tokens: T, knockToken: 4 });
    const { device } = ctx;
    const attnQ = storageBuffer(device, 'Test.attnQ', T * QDIM * 4);
    const attnK = storageBuffer(device, 'Test.attnK', T * KVDIM * 4);
    const mask = storageBuffer(device, 'Test.mask', T * 4);
    device.queue.writeBuffer(mask, 0, Uint32Array.from({ length: T }, (_, t) => (t === 4 ? 1 : 0)));
    const probs = storageBuffer(device, 'Test.probs', T * T * 4);
    const state = mixer.newState();
    try {
      for (const [from, to] of [
        [0, 13],
        [13, 14],
        [14, 21],
      ] as [number, number][]) {
        const taps = { attnQ: [attnQ], attnK: [attnK], row0: from };
        await runMixer(ctx, h, mixer, { tokens: to - from, input: x.subarray(from * D, to * D), state, taps, knockRow: from === 0 ? 4 : null });
      }
      const expected = ref.taps.attnProbs as Float64Array;
      for (let head = 0; head < H; head++) {
        device.queue.writeBuffer(probs, 0, new Float32Array(T * T).fill(Number.NaN));
        const d = await withErrorScopes(device, 'probs', () => {
          const d = attentionProbs(ctx!, { tokens: T, nHeads: H, nKvHeads: HKV, headDim: HD, head, scale: cfg.scale }, { q: attnQ, k: attnK, mask, probs });
          submitDispatches(device, 'Test.probs', [d]);
          return d;
        });
        const got = await readF32(device, probs, T * T);
        d.destroy();
        expect(relativeError(got, expected.subarray(head * T * T, (head + 1) * T * T)), `head ${head} (seed ${seed})`).toBeLessThanOrEqual(TOL);
        for (let t = 0; t < T; t++) for (let j = t + 1; j < T; j++) expect(got[t * T + j]).toBe(0);
        for (let t = 5; t < T; t++) expect(got[t * T + 4]).toBe(0);
      }
    } finally {
      [attnQ, attnK, mask, probs, ...state].forEach((b) => b.destroy());
      mixer.destroy();
      h.destroy();
    }
  });

  it('the kernels on a filled cache: prefill tiles and decode splits (several, combined) against the reference', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const capacity = 61;
    const len = 23;
    // Head dims: 24 (key tiles of 32), 130 (tiles of 11 keys, 33 or 32 output dims per thread), 3 heads over 1 kv head.
    for (const [T, path, interleaved, hd, heads, kvHeads] of [
      [19, 'prefill', false, HD, H, HKV],
      [3, 'decode', true, HD, H, HKV],
      [1, 'decode', false, HD, H, HKV],
      [21, 'prefill', true, 130, 3, 1],
      [2, 'decode', false, 130, 3, 1],
    ] as const) {
      const rotaryDim = hd === HD ? 16 : 62;
      const QDIM = heads * hd;
      const KVDIM = kvHeads * hd;
      const QKV = QDIM + 2 * KVDIM;
      const s = seed + 700 + T * hd;
      const qkv = randomF32(T * (QKV + 5), s, 1); // rows of QKV + 5: a strided view
      const cachedK = randomF32(len * KVDIM, s + 1, 1);
      const cachedV = randomF32(len * KVDIM, s + 2, 1);
      const maskBits = Uint32Array.from({ length: capacity }, (_, j) => (j < len && j % 5 === 2 ? 1 : 0));
      const keys = storageBuffer(device, 'Test.keys', capacity * KVDIM * 4);
      const values = storageBuffer(device, 'Test.values', capacity * KVDIM * 4);
      device.queue.writeBuffer(keys, 0, cachedK);
      device.queue.writeBuffer(values, 0, cachedV);
      const meta = storageBuffer(device, 'Test.meta', 16);
      device.queue.writeBuffer(meta, 0, new Uint32Array([len, 0, 0, 0]));
      const mask = storageBuffer(device, 'Test.mask', capacity * 4);
      device.queue.writeBuffer(mask, 0, maskBits);
      const buffers = {
        qkv: uploadF32(device, 'Test.qkv', qkv),
        rope: uploadF32(device, 'Test.rope', ropeTable(capacity, rotaryDim, 10000)),
        q: poisoned(device, 'Test.q', T * QDIM),
        k: poisoned(device, 'Test.k', T * KVDIM),
        keys,
        values,
        meta,
        mask,
        output: poisoned(device, 'Test.output', T * QDIM),
        partials: storageBuffer(device, 'Test.partials', T * heads * Math.ceil(capacity / 8) * (hd + 2) * 4),
      };
      const shape = { tokens: T, nHeads: heads, nKvHeads: kvHeads, headDim: hd, capacity, rotaryDim, interleaved, scale: 0.25, knockRow: T > 1 ? 1 : 0, qkvOffset: 2, qkvStride: QKV + 5, path, splitLength: 8 } as const;
      const dispatches = await withErrorScopes(device, 'attention', () => {
        const ds = attention(ctx!, shape, buffers, 'Test.attention');
        submitDispatches(device, 'Test.attention', ds);
        return ds;
      });
      const rope = (offset: number, n: number) => ropeRef(qkv, { rows: T, heads: n, headDim: hd, start: len, rotaryDim, theta: 10000, interleaved, stride: QKV + 5, offset: 2 + offset });
      const q = rope(0, heads);
      const k = rope(QDIM, kvHeads);
      const allK = new Float64Array((len + T) * KVDIM);
      const allV = new Float64Array((len + T) * KVDIM);
      allK.set(cachedK);
      allK.set(k, len * KVDIM);
      allV.set(cachedV);
      for (let t = 0; t < T; t++) allV.set(qkv.subarray(t * (QKV + 5) + 2 + QDIM + KVDIM, t * (QKV + 5) + 2 + QKV), (len + t) * KVDIM);
      const refMask = Array.from({ length: len + T }, (_, j) => (j < len ? (maskBits[j] as number) : j === len + (T > 1 ? 1 : 0) ? 1 : 0));
      const { out } = causalAttentionRef(q, allK, allV, { queries: T, keys: len + T, nHeads: heads, nKvHeads: kvHeads, headDim: hd, scale: 0.25 }, refMask);
      const what = `T=${T} ${path} hd=${hd} (seed ${s})`;
      expect(relativeError(await readF32(device, buffers.q, T * QDIM), q), `q ${what}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(await readF32(device, keys, (len + T) * KVDIM), allK), `keys ${what}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(await readF32(device, values, (len + T) * KVDIM), allV), `values ${what}`).toBe(0);
      expect(relativeError(await readF32(device, buffers.output, T * QDIM), out), `output ${what}`).toBeLessThanOrEqual(TOL);
      expect(Array.from(new Uint32Array(await readBuffer(device, meta)))).toEqual([len + T, 0, 0, 0]);
      expect(Array.from(new Uint32Array(await readBuffer(device, mask, (len + T) * 4)))).toEqual(refMask);
      dispatches.forEach((d) => d.destroy());
      Object.values(buffers).forEach((b) => b.destroy());
    }
  });

  it('never writes past the capacity; refuses a chunk bigger than it, a head dim over 256 and a missing weight, naming the layer', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const cfg = config({ capacity: 8 });
    const h = mixerHarness(ctx, { dModel: D, maxTokens: 16, layer: 3, weights: weightsFor(cfg, seed + 900) });
    const mixer = attentionMixer(h.build, cfg);
    expect(mixer.capacity).toBe(8);
    expect(() => attentionMixer(h.build, config({ headDim: 264, nHeads: 2, nKvHeads: 1 }))).toThrow(/layer 3 attention: headDim 264 is over the kernels' 256/);
    expect(() => attentionMixer(h.build, config({ names: { qkv: 'qkv_proj.weight', out: 'out_proj.weight' } }))).toThrow(/layer 3 attention: no weight qkv_proj.weight/);
    const state = mixer.newState();
    try {
      const x = randomF32(16 * D, seed + 901, 1);
      await expect(runMixer(ctx, h, mixer, { tokens: 9, input: x.subarray(0, 9 * D), state })).rejects.toThrow(/layer 3 attention: a chunk of 9 tokens does not fit its KV cache of 8 tokens/);
      await runMixer(ctx, h, mixer, { tokens: 6, input: x.subarray(0, 6 * D), state });
      const keysBefore = await readF32(ctx.device, state[0] as GPUBuffer);
      await runMixer(ctx, h, mixer, { tokens: 5, input: x.subarray(6 * D, 11 * D), state }); // passes the capacity: 11 > 8
      const meta = new Uint32Array(await readBuffer(ctx.device, state[2] as GPUBuffer));
      expect(Array.from(meta)).toEqual([8, 1, 0, 0]); // full, and the overflow flagged for the session
      const keysAfter = await readF32(ctx.device, state[0] as GPUBuffer);
      expect(Array.from(keysAfter.subarray(0, 6 * KVDIM))).toEqual(Array.from(keysBefore.subarray(0, 6 * KVDIM)));
    } finally {
      state.forEach((b) => b.destroy());
      mixer.destroy();
      h.destroy();
    }
  });
});
