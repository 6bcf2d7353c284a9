import { describe, expect, it } from 'vitest';
import { readBuffer, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { CANDIDATE_BLOCK, CANDIDATE_SLOTS, GREEDY, candidateCount, sample, seenBitset, type CandidateUse, type SampleSettings } from '../../app/kernels/sample';
import { sampleRef } from '../../app/kernels/sample.ref';
import { randomF32 } from '../../app/kernels/self-test';
import { eachSubgroupReduction, useTestGpu } from '../support/gpu';

/**
 * Greedy and top-k = 1 must be exact. With sampling, the GPU (fp32 sums) and the reference
 * (float64) can disagree only where u · total, or p · mass for top-p, lies within rounding of a
 * boundary; such a disagreement is accepted only if the reference, moved by at most NUDGE in u
 * (any id between its picks at u ± NUDGE) or by NUDGE in p, picks what the GPU picked.
 */
const NUDGE = 1e-5;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

interface Run {
  /** The whole logits buffer; the row sampled starts at `offset`. */
  logits: Float32Array;
  offset: number;
  vocab: number;
  seen: Uint32Array | null;
  markChosen?: boolean;
  /** Where the first stage runs (default 'sampling', as the app). */
  candidates?: CandidateUse;
}

/**
 * Samples once per settings entry through one dispatch (settings changed with `set`), returning the
 * ids, whether each ran the first stage, and what the first stage left in its buffer after each.
 */
async function runSample(ctx: GpuContext, run: Run, settings: SampleSettings[]): Promise<{ ids: number[]; seen: Uint32Array | null; staged: boolean[]; candidates: (Uint32Array | null)[] }> {
  const { device } = ctx;
  const logits = uploadF32(device, 'Test.logits', run.logits);
  const token = storageBuffer(device, 'Test.token', 4);
  const seen = run.seen ? storageBuffer(device, 'Test.seen', run.seen.byteLength) : undefined;
  if (seen && run.seen) device.queue.writeBuffer(seen, 0, run.seen);
  const op = await withErrorScopes(device, 'create', () =>
    sample(ctx, { vocab: run.vocab, logitsOffset: run.offset }, { logits, token, seen }, settings[0] ?? GREEDY, 'Test.sample', {
      markChosen: run.markChosen ?? false,
      candidates: run.candidates ?? 'sampling',
    }),
  );
  const ids: number[] = [];
  const staged: boolean[] = [];
  const candidates: (Uint32Array | null)[] = [];
  for (const s of settings) {
    op.set(s);
    staged.push(op.usesCandidates);
    device.queue.writeBuffer(token, 0, new Uint32Array([0xffffffff])); // poisoned
    if (op.candidates) device.queue.writeBuffer(op.candidates.buffer, 0, new Uint32Array(op.candidates.buffer.size / 4).fill(0xdeadbeef)); // poisoned
    await withErrorScopes(device, 'sample', () => submitDispatches(device, 'Test', [op]));
    ids.push(new Uint32Array(await readBuffer(device, token, 4))[0] as number);
    candidates.push(op.candidates ? new Uint32Array(await readBuffer(device, op.candidates.buffer)) : null);
  }
  const seenAfter = seen ? new Uint32Array(await readBuffer(device, seen)) : null;
  op.destroy();
  for (const b of [logits, token, seen]) b?.destroy();
  return { ids, seen: seenAfter, staged, candidates };
}

/** The penalized logits as the kernels hold them (f32), as the reference computes them. */
function penalizedRow(run: Run, penalty: number): Float32Array {
  const r = row(run);
  return Float32Array.from(r, (v, i) => {
    const marked = run.seen !== null && penalty !== 1 && (((run.seen[i >>> 5] as number) >>> (i & 31)) & 1) === 1;
    return marked ? (v < 0 ? v * penalty : v / penalty) : v;
  });
}

/** A float's bits made monotonic as a u32, as the kernels order logits (−0 and +0 alike). */
function orderKey(v: number): number {
  const bits = new Uint32Array(new Float32Array([v === 0 ? 0 : v]).buffer)[0] as number;
  return (bits & 0x80000000 ? ~bits : bits | 0x80000000) >>> 0;
}

/**
 * What the first stage must keep, from the penalized row: each block's ids at or above its k-th
 * largest value (all of them when it has ≤ k ids), in increasing order, or 'overflow' where those
 * are more than CANDIDATE_SLOTS; and each block's threshold (the k-th largest's order key, 0 when
 * it has ≤ k ids).
 */
function expectedCandidates(values: Float32Array, k: number): { kept: (number[] | 'overflow')[]; thresholds: number[] } {
  const kept: (number[] | 'overflow')[] = [];
  const thresholds: number[] = [];
  for (let start = 0; start < values.length; start += CANDIDATE_BLOCK) {
    const block = values.subarray(start, Math.min(start + CANDIDATE_BLOCK, values.length));
    const kth = k < block.length ? (Float32Array.from(block).sort().reverse()[k - 1] as number) : -Infinity;
    const ids = [...block.keys()].filter((j) => (block[j] as number) >= kth).map((j) => start + j);
    kept.push(ids.length > CANDIDATE_SLOTS ? 'overflow' : ids);
    thresholds.push(kth === -Infinity ? 0 : orderKey(kth));
  }
  return { kept, thresholds };
}

/** The first stage's buffer read as expectedCandidates's lists and thresholds, with each kept id's value. */
function readCandidates(words: Uint32Array, blocks: number): { kept: (number[] | 'overflow')[]; thresholds: number[]; values: Map<number, number> } {
  const asF32 = new Float32Array(words.buffer, words.byteOffset, words.length);
  const values = new Map<number, number>();
  const kept = Array.from({ length: blocks }, (_, b) => {
    const count = words[b] as number;
    if (count === 0xffffffff) return 'overflow' as const;
    expect(count, `block ${b}'s count`).toBeLessThanOrEqual(CANDIDATE_SLOTS);
    return Array.from({ length: count }, (_, j) => {
      const at = 2 * blocks + 2 * (b * CANDIDATE_SLOTS + j);
      values.set(words[at + 1] as number, asF32[at] as number);
      return words[at + 1] as number;
    });
  });
  return { kept, thresholds: [...words.subarray(blocks, 2 * blocks)], values };
}

function row(run: Run): Float32Array {
  return run.logits.subarray(run.offset, run.offset + run.vocab);
}

/** A row of `vocab` logits behind `offset` others, uniform in ±scale. */
function makeRun(vocab: number, caseSeed: number, scale: number, offset = 0): Run {
  return { logits: randomF32(offset + vocab, caseSeed, scale), offset, vocab, seen: null };
}

/** `count` distinct random ids in from .. from + span − 1 (the first distinct ones of 4 · count draws). */
function distinctIds(count: number, idSeed: number, from: number, span: number): number[] {
  const ids = [...new Set([...randomF32(4 * count, idSeed)].map((x) => from + Math.floor(((x + 1) / 2) * span)))].slice(0, count);
  expect(ids, `${count} distinct ids in ${from}..${from + span - 1}`).toHaveLength(count);
  return ids;
}

/** Asserts the GPU's pick is the reference's, or within rounding of a boundary (then returns true: a near miss). */
function expectPick(gpu: number, run: Run, s: SampleSettings): boolean {
  const ref = sampleRef(row(run), run.seen, s);
  if (gpu === ref) return false;
  // The pick walks the kept ids in index order as u grows (see the sweep test below), so every id
  // the reference picks for some u' within NUDGE of u lies between its picks at u − NUDGE and
  // u + NUDGE. With 50,280 ids several can lie in that window.
  const below = sampleRef(row(run), run.seen, { ...s, u: Math.max(0, s.u - NUDGE) });
  const above = sampleRef(row(run), run.seen, { ...s, u: Math.min(0.999999, s.u + NUDGE) });
  const nudgedP = [{ ...s, topP: Math.max(1e-6, s.topP - NUDGE) }, { ...s, topP: Math.min(1, s.topP + NUDGE) }].map((n) => sampleRef(row(run), run.seen, n));
  const explained = (below <= gpu && gpu <= above) || nudgedP.includes(gpu);
  expect(explained, `GPU picked ${gpu}, reference ${ref} for ${JSON.stringify(s)}; u ± ${NUDGE} picks ${below}..${above}, p ± ${NUDGE} picks ${nudgedP.join(', ')}`).toBe(true);
  return true;
}

/** expectPick on every pick (ids[n] for settings[n]); returns how many differed from the reference only by rounding at a boundary. */
function nearMissesOf(ids: readonly number[], run: Run, settings: readonly SampleSettings[]): number {
  return settings.filter((s, n) => expectPick(ids[n] as number, run, s)).length;
}

const SETTINGS: Omit<SampleSettings, 'u'>[] = [
  { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 },
  { temperature: 0.7, topK: 50, topP: 1, repetitionPenalty: 1 },
  { temperature: 1.3, topK: 0, topP: 0.9, repetitionPenalty: 1 },
  { temperature: 0.8, topK: 40, topP: 0.95, repetitionPenalty: 1.3 },
  { temperature: 1, topK: 3, topP: 0.5, repetitionPenalty: 1.2 },
  { temperature: 2.5, topK: 0, topP: 1, repetitionPenalty: 0.8 },
  // More ids than the short finish takes (256): top-p by the threshold search.
  { temperature: 1.1, topK: 300, topP: 0.8, repetitionPenalty: 1.1 },
];

describe('sample.wgsl against its CPU reference (Dawn)', () => {
  for (const vocab of [5, 1000, 50280]) {
    it(`V=${vocab}: greedy is the exact argmax, ties to the lowest id, from a row at an offset`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const caseSeed = seed + vocab;
      const run = makeRun(vocab, caseSeed, 5, 2 * vocab + 3);
      const r = row(run);
      // The maximum three times, at random ids; the lowest must win.
      const at = [...randomF32(3, caseSeed + 1)].map((x) => Math.floor(((x + 1) / 2) * vocab));
      for (const i of at) r[i] = 7.25;
      const { ids } = await runSample(ctx, run, [GREEDY, { ...GREEDY, u: 0.9 }]);
      expect(ids).toEqual([Math.min(...at), Math.min(...at)]);
      expect(sampleRef(r, null, GREEDY)).toBe(Math.min(...at));
    });

    it(`V=${vocab}: greedy with the repetition penalty, and top-k = 1, equal the reference argmax`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const run = makeRun(vocab, seed + 3 * vocab, 4);
      const r = row(run);
      // Mark the largest logits and some negative ones as seen.
      const order = [...r.keys()].sort((a, b) => (r[b] as number) - (r[a] as number));
      run.seen = seenBitset([...order.slice(0, Math.min(3, vocab - 1)), ...order.slice(-2)], vocab);
      const settings: SampleSettings[] = [
        { ...GREEDY, repetitionPenalty: 1.8 },
        { ...GREEDY, repetitionPenalty: 0.5 },
        { temperature: 0.8, topK: 1, topP: 0.9, repetitionPenalty: 1.8, u: 0.7 },
        { temperature: 3, topK: 1, topP: 1, repetitionPenalty: 1, u: 0.999 },
        // top-k = 2 at any u and p: one of the two largest l' (exact in the keys).
        { temperature: 0.5, topK: 2, topP: 1, repetitionPenalty: 1.8, u: 0.3 },
      ];
      // The thresholds' searches with subgroups (16-ary) and without (binary).
      await eachSubgroupReduction(ctx, async (sg) => {
        const { ids } = await runSample(ctx!, run, settings);
        expect(ids, `subgroups ${sg}`).toEqual(settings.map((s) => sampleRef(r, run.seen, s)));
        expect(ids[3]).toBe(order[0]);
      });
    });

    it(`V=${vocab}: with fixed u the GPU picks the reference's token for several temperature, top-k, top-p and penalty settings`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const run = makeRun(vocab, seed + 5 * vocab, 6);
      run.seen = seenBitset([...randomF32(Math.ceil(vocab / 10), seed + 7)].map((x) => Math.floor(((x + 1) / 2) * vocab)), vocab);
      const us = [...randomF32(4, seed + vocab)].map((x) => (x + 1) / 2);
      const settings = SETTINGS.flatMap((s) => us.map((u) => ({ ...s, u })));
      // The thresholds' searches with subgroups (16-ary) and without (binary).
      await eachSubgroupReduction(ctx, async (sg) => {
        const { ids } = await runSample(ctx!, run, settings);
        expect(nearMissesOf(ids, run, settings), `picks that differ from the reference only by rounding at a boundary (subgroups ${sg})`).toBeLessThanOrEqual(2);
      });
    });
  }

  it('V=5: a sweep of u walks the CDF of the kept ids in index order', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const run: Run = { logits: Float32Array.from([0.5, 2, -1, 2, 1]), offset: 0, vocab: 5, seen: null };
    const us = Array.from({ length: 50 }, (_, k) => (k + 0.5) / 50);
    const plain = us.map((u) => ({ temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, u }));
    const topK = us.map((u) => ({ temperature: 1, topK: 2, topP: 1, repetitionPenalty: 1, u }));
    const { ids } = await runSample(ctx, run, [...plain, ...topK]);
    nearMissesOf(ids, run, [...plain, ...topK]);
    // Every id is reachable without top-k; with top-k = 2 only the two tied maxima (ids 1 and 3).
    expect(new Set(ids.slice(0, 50))).toEqual(new Set([0, 1, 2, 3, 4]));
    expect(new Set(ids.slice(50))).toEqual(new Set([1, 3]));
    // Index order: small u picks the lower id.
    expect(ids.slice(0, 50)).toEqual([...ids.slice(0, 50)].sort((a, b) => a - b));
  });

  it('top-k and top-p thresholds exact to the last bit: logits one float apart at the boundary, with and without subgroups', async (test) => {
    if (!ctx) return test.skip(skipReason);
    // 60 logits at consecutive float32 values from 5 up (5, the next float, …) at random ids, the
    // rest in ±1: the 40th largest is 20 floats above 5, so a threshold off by a few floats keeps
    // a few more ids and moves the picks of a sweep of u (the weights are all but equal).
    const vocab = 1000;
    const run = makeRun(vocab, seed + 13, 1);
    const r = row(run);
    const bits = new Uint32Array(new Float32Array([5]).buffer)[0] as number;
    const ids = distinctIds(60, seed + 14, 0, vocab);
    ids.forEach((id, i) => (r[id] = new Float32Array(new Uint32Array([bits + i]).buffer)[0] as number));
    // u at (k + 0.5) / 24 stays ≥ 0.004 from every multiple of 1/40 and of 1/30, where the CDF of
    // the 40 (top-k) or 30 (top-p) all-but-equal kept weights has its steps: a u on a step (23
    // points put one at exactly 0.5, the 20th of 40 steps) picks by the sums' last bit, which
    // float32 and the reference's float64 need not share (the test then failed for ~1 seed in 3).
    const us = Array.from({ length: 24 }, (_, k) => (k + 0.5) / 24);
    const settings: SampleSettings[] = [
      ...us.map((u) => ({ temperature: 1, topK: 40, topP: 1, repetitionPenalty: 1, u })),
      // top-p over the top 60 (each ~1/60 of the kept mass): p = 0.5 keeps the 30 largest.
      ...us.map((u) => ({ temperature: 1, topK: 60, topP: 0.5, repetitionPenalty: 1, u })),
    ];
    await eachSubgroupReduction(ctx, async (sg) => {
      const { ids: got } = await runSample(ctx!, run, settings);
      expect(got, `subgroups ${sg}`).toEqual(settings.map((s) => sampleRef(r, null, s)));
    });
  });

  it('the first stage keeps each block\'s top-k with ties, in id order, on odd sizes, with the penalty; it runs only where it serves', async (test) => {
    if (!ctx) return test.skip(skipReason);
    // Three blocks and a partial fourth; a tie at block 1's 7th largest value.
    const vocab = 3 * CANDIDATE_BLOCK + 291;
    const run = makeRun(vocab, seed + 17, 4);
    const r = row(run);
    // Block 1's largest: six distinct values, then two equal (its 7th and 8th largest), unpenalized.
    const top = distinctIds(8, seed + 18, CANDIDATE_BLOCK, CANDIDATE_BLOCK);
    top.forEach((id, n) => (r[id] = n < 6 ? 30 + n : 25));
    const marked = [...randomF32(vocab / 8, seed + 18)].map((x) => Math.floor(((x + 1) / 2) * vocab)).filter((id) => !top.includes(id));
    run.seen = seenBitset(marked, vocab);
    const settings: SampleSettings[] = [
      { ...GREEDY, repetitionPenalty: 1.3 },
      { temperature: 0.8, topK: 7, topP: 0.9, repetitionPenalty: 1.3, u: 0.4 },
      { temperature: 1, topK: 40, topP: 1, repetitionPenalty: 1, u: 0.6 },
      { temperature: 1, topK: CANDIDATE_SLOTS, topP: 1, repetitionPenalty: 0.7, u: 0.2 },
      // Not served: top-k off, or above the slots.
      { temperature: 1, topK: 0, topP: 0.9, repetitionPenalty: 1, u: 0.5 },
      { temperature: 1, topK: CANDIDATE_SLOTS + 1, topP: 1, repetitionPenalty: 1, u: 0.5 },
    ];
    // 'all': the first stage for greedy too (k = 1), where the app leaves greedy to one pass over the vocabulary.
    const { ids, staged, candidates } = await runSample(ctx, { ...run, candidates: 'all' }, settings);
    expect(staged).toEqual([true, true, true, true, false, false]);
    settings.forEach((s, n) => {
      const words = candidates[n] as Uint32Array;
      const blocks = Math.ceil(vocab / CANDIDATE_BLOCK);
      if (!staged[n]) {
        // The first stage did not run: its buffer still holds the poison.
        expect(words.every((w) => w === 0xdeadbeef)).toBe(true);
        return;
      }
      const values = penalizedRow(run, s.repetitionPenalty);
      const k = candidateCount(s, 'all');
      const got = readCandidates(words, blocks);
      const want = expectedCandidates(values, k);
      expect(got.kept, `settings ${n}, k = ${k}`).toEqual(want.kept);
      // A threshold's key, one ULP of its value a step: exact, or within WGSL's 2.5 ULP where the penalty divides.
      got.thresholds.forEach((key, b) => expect(Math.abs(key - (want.thresholds[b] as number)), `settings ${n}, block ${b}'s threshold`).toBeLessThanOrEqual(s.repetitionPenalty === 1 ? 0 : 2));
      // Exact, but where the penalty divides (WGSL's f32 division: within 2.5 ULP).
      const divided = (id: number) => s.repetitionPenalty !== 1 && (row(run)[id] as number) > 0 && (((run.seen![id >>> 5] as number) >>> (id & 31)) & 1) === 1;
      for (const [id, v] of got.values) {
        const want1 = values[id] as number;
        const ulp = 2 ** (Math.floor(Math.log2(Math.abs(want1))) - 23);
        expect(Math.abs(v - want1), `id ${id}'s value ${v}, want ${want1}`).toBeLessThanOrEqual(divided(id) ? 2.5 * ulp : 0);
      }
      // The tie at block 1's 7th largest: 8 kept there for top-k 7.
      if (k === 7) expect((want.kept[1] as number[]).length).toBe(8);
    });
    expect(nearMissesOf(ids, run, settings)).toBeLessThanOrEqual(1);
  });

  it('the first stage on whole blocks and on a last block of one id; ±0 and ten equal logits at the top', async (test) => {
    if (!ctx) return test.skip(skipReason);
    for (const vocab of [CANDIDATE_BLOCK, 2 * CANDIDATE_BLOCK + 1]) {
      const run = makeRun(vocab, seed + 26 + vocab, 3);
      const r = row(run);
      // −0 and +0 (equal keys), and ten equal values above the rest of block 0 (±3): ties past top-k 5.
      r[3] = -0;
      r[4] = 0;
      for (let i = 10; i < 20; i++) r[i] = 2.9999;
      const settings = [5, 12, CANDIDATE_SLOTS].map((topK) => ({ temperature: 1, topK, topP: 1, repetitionPenalty: 1, u: 0.25 }));
      const { ids, candidates } = await runSample(ctx, run, settings);
      settings.forEach((s, n) => {
        const got = readCandidates(candidates[n] as Uint32Array, Math.ceil(vocab / CANDIDATE_BLOCK));
        const want = expectedCandidates(penalizedRow(run, 1), s.topK);
        expect(got.kept, `V=${vocab}, top-k ${s.topK}`).toEqual(want.kept);
        expect(got.thresholds, `V=${vocab}, top-k ${s.topK}: thresholds`).toEqual(want.thresholds);
      });
      expect(nearMissesOf(ids, run, settings)).toBeLessThanOrEqual(1);
    }
  });

  it('a block whose ties overflow its slots falls back to the whole vocabulary, greedy and sampling', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const vocab = 2 * CANDIDATE_BLOCK + 77;
    const run = makeRun(vocab, seed + 19, 2);
    const r = row(run);
    // Block 1: 100 ids at 9 (the maximum of the row): more than the slots for any k ≤ 64.
    const tied = distinctIds(100, seed + 20, CANDIDATE_BLOCK, CANDIDATE_BLOCK);
    for (const id of tied) r[id] = 9;
    const us = Array.from({ length: 12 }, (_, k) => (k + 0.5) / 12);
    const settings: SampleSettings[] = [GREEDY, ...us.map((u) => ({ temperature: 1, topK: 40, topP: 1, repetitionPenalty: 1, u })), ...us.map((u) => ({ temperature: 0.5, topK: 50, topP: 0.3, repetitionPenalty: 1, u }))];
    const { ids, staged, candidates } = await runSample(ctx, { ...run, candidates: 'all' }, settings);
    expect(staged.every(Boolean)).toBe(true);
    for (const words of candidates) expect(words?.[1], 'block 1 overflowed').toBe(0xffffffff);
    expect(ids[0]).toBe(Math.min(...tied));
    // 40 of the 100 equal maxima are kept (ties at the boundary: all 100): every pick one of them.
    expect(nearMissesOf(ids, run, settings)).toBeLessThanOrEqual(2);
    expect(new Set(ids.slice(1)).size, 'a sweep of u reaches many of the tied ids').toBeGreaterThan(10);
    for (const id of ids) expect(tied).toContain(id);
  });

  it('top-k ties past the short finish\'s 256 ids fall back to the threshold search, with and without candidates', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const vocab = 3 * CANDIDATE_BLOCK + 5;
    const run = makeRun(vocab, seed + 24, 2);
    const r = row(run);
    // 300 ids at 4 (the maximum), spread over the blocks: top-k 40 keeps all 300.
    const tied = distinctIds(300, seed + 25, 0, vocab);
    for (const id of tied) r[id] = 4;
    // u · 300 stays 0.1 from a whole number: off the CDF's steps of 1/300 (equal weights).
    const us = Array.from({ length: 10 }, (_, k) => (k + 0.37) / 10);
    const settings = us.map((u) => ({ temperature: 0.9, topK: 40, topP: 0.7, repetitionPenalty: 1, u }));
    for (const candidates of ['sampling', 'none'] as const) {
      const { ids } = await runSample(ctx, { ...run, candidates }, settings);
      expect(nearMissesOf(ids, run, settings)).toBeLessThanOrEqual(2);
      for (const id of ids) expect(tied).toContain(id);
    }
  });

  it('the whole-vocabulary search and the candidates\' pick the same ids for top-k settings', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const run = makeRun(5 * CANDIDATE_BLOCK - 3, seed + 21, 5);
    run.seen = seenBitset([...randomF32(200, seed + 22)].map((x) => Math.floor(((x + 1) / 2) * run.vocab)), run.vocab);
    const us = [...randomF32(6, seed + 23)].map((x) => (x + 1) / 2);
    const settings = [
      { temperature: 0.8, topK: 40, topP: 0.95, repetitionPenalty: 1.2 },
      { temperature: 1.5, topK: 5, topP: 1, repetitionPenalty: 1 },
      { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1.2 },
    ].flatMap((s) => us.map((u) => ({ ...s, u })));
    const staged = await runSample(ctx, { ...run, candidates: 'all' }, settings);
    const whole = await runSample(ctx, { ...run, candidates: 'none' }, settings);
    expect(staged.staged.every(Boolean)).toBe(true);
    expect(whole.staged.some(Boolean)).toBe(false);
    expect(whole.candidates.every((c) => c === null)).toBe(true);
    expect(nearMissesOf(staged.ids, run, settings) + nearMissesOf(whole.ids, run, settings)).toBeLessThanOrEqual(2);
  });

  it('runs the first stage where it shortens the search: sampling with 2 ≤ top-k ≤ the slots (greedy too when asked)', () => {
    const t = (temperature: number, topK: number) => ({ temperature, topK });
    expect([t(0.8, 40), t(1, 2), t(1, CANDIDATE_SLOTS), t(1, CANDIDATE_SLOTS + 1), t(1, 0), t(1, 1), t(0, 40), t(0, 0)].map((s) => candidateCount(s))).toEqual([40, 2, CANDIDATE_SLOTS, 0, 0, 0, 0, 0]);
    expect([t(1, 1), t(0, 40), t(0, 0), t(1, 0)].map((s) => candidateCount(s, 'all'))).toEqual([1, 1, 1, 0]);
    expect(candidateCount(t(0.8, 40), 'none')).toBe(0);
  });

  it('keeps candidates by default on a GPU, not on a software adapter (where the stage costs more than it saves)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const logits = storageBuffer(device, 'Test.logits', 4 * 3000);
    const token = storageBuffer(device, 'Test.token', 4);
    const settings = { temperature: 0.8, topK: 40, topP: 0.95, repetitionPenalty: 1, u: 0.5 };
    for (const software of [true, false]) {
      const op = sample({ ...ctx, adapter: { ...ctx.adapter, software } }, { vocab: 3000 }, { logits, token }, settings);
      expect(op.candidates === null, `software ${software}`).toBe(software);
      expect(op.usesCandidates).toBe(!software);
      op.destroy();
    }
    logits.destroy();
    token.destroy();
  });

  it('marks the chosen id in `seen` when asked', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const run = makeRun(1000, seed + 11, 3);
    run.seen = seenBitset([1, 999], 1000);
    run.markChosen = true;
    const { ids, seen } = await runSample(ctx, run, [{ temperature: 1, topK: 0, topP: 0.8, repetitionPenalty: 1.1, u: 0.3 }]);
    const id = ids[0] as number;
    expect(id).toBeLessThan(1000);
    expect(seen).toEqual(seenBitset([1, 999, id], 1000));
  });

  it('reuses one pipeline for every vocabulary size (shapes travel in uniforms)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    await runSample(ctx, makeRun(7, seed, 1), [GREEDY]);
    const before = ctx.pipelines.size;
    await runSample(ctx, makeRun(3001, seed, 1), [GREEDY]);
    expect(ctx.pipelines.size).toBe(before);
  });

  it('rejects small buffers and settings out of range, naming them', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const logits = storageBuffer(device, 'Test.logits', 4 * 100);
    const token = storageBuffer(device, 'Test.token', 4);
    expect(() => sample(ctx!, { vocab: 100, logitsOffset: 1 }, { logits, token }, GREEDY)).toThrow(/logits \(Test\.logits\) holds 400 bytes, needs 404/);
    expect(() => sample(ctx!, { vocab: 10 }, { logits, token, seen: token }, GREEDY)).toThrow(/token and seen are the same buffer/);
    expect(() => sample(ctx!, { vocab: 100 }, { logits, token }, { ...GREEDY, topP: 0 })).toThrow(/topP must be in \(0, 1\]/);
    expect(() => sample(ctx!, { vocab: 100 }, { logits, token }, { ...GREEDY, u: 1 })).toThrow(/u must be in \[0, 1\)/);
    const op = sample(ctx, { vocab: 100 }, { logits, token }, GREEDY);
    expect(() => op.set({ ...GREEDY, temperature: -1 })).toThrow(/temperature must be finite and ≥ 0/);
    op.destroy();
    logits.destroy();
    token.destroy();
  });
});
