/**
 * ssd_scan.wgsl (Mamba-2's scan: chunked SSD prefill, one-token decode) against its float64
 * sequential reference on random odd sizes, and against transformers' golden fixtures
 * (layer 0 of mamba2-groups and mamba2-one-group: y from the golden x, B, C and Δ; then the gated
 * norm against out_proj_in, with z recomputed from the golden embeddings and the layer's weights).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader, readTensorBytes, toFloat32 } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches, submitUnitsApart } from '../../app/kernels/dispatch';
import { gatedRmsNorm } from '../../app/kernels/gated-rmsnorm';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { packSsdWeights, ssdScan, ssdStepNormSums, ssdStepRowsPerWorkgroup } from '../../app/kernels/ssd';
import { convXbc, mamba2InProjDt, mamba2Layout, type Mamba2Dims } from '../../app/arch/mamba2/layout';
import { ssdRef } from '../../app/kernels/ssd.ref';
import { eachSubgroupReduction, uniformF32, useTestGpu } from '../support/gpu';

/** fp32 scans: relative error ≤ 1e-4 on y and the final state; Δ is element-wise: ≤ 1e-5. */
const TOLERANCE = 1e-4;
const DELTA_TOLERANCE = 1e-5;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

/** One layer's inputs for T tokens, as the model holds them: the conv output xBC and in_proj's output (for dt). */
interface Inputs {
  T: number;
  H: number;
  P: number;
  G: number;
  N: number;
  xbc: Float32Array; // [T, H·P + 2·G·N]
  inProj: Float32Array; // [T, 2·Di + 2·G·N + H]: z, xBC (unused here), dt
  dtBias: Float32Array; // [H]
  aLog: Float32Array; // [H]
  d: Float32Array; // [H]
}

const dimsOf = (i: { H: number; P: number; G: number; N: number }): Mamba2Dims => ({ dInner: i.H * i.P, nGroups: i.G, dState: i.N, nHeads: i.H });

/**
 * Δ log-uniform in 1e-3..2 (dt = log(expm1(Δ)), split between dt and dt_bias), with about 2% of
 * the entries at dt > 20 (softplus(dt) = dt) and 2% at dt < −100 (Δ underflows to 0); A in
 * −8..−0.3. With `slow`: Δ in 1e-3..0.05 and A in −0.05..−0.01, so that exp(S) stays near 1 over
 * hundreds of tokens and the state-to-output term and far intra-chunk terms of a chunk's last rows
 * are not decayed away (with the defaults they vanish within ~20 tokens).
 */
function makeInputs(T: number, H: number, P: number, G: number, N: number, caseSeed: number, slow = false): Inputs {
  const dims = dimsOf({ H, P, G, N });
  const { inProjWidth: width, dtOffset: dtAt } = mamba2Layout(dims);
  const dtBias = uniformF32(H, caseSeed + 1, -1, 1);
  const logDelta = uniformF32(T * H, caseSeed + 2, Math.log(1e-3), Math.log(slow ? 0.05 : 2));
  const pick = uniformF32(T * H, caseSeed + 3, 0, slow ? 0.98 : 1);
  const inProj = randomF32(T * width, caseSeed + 4, 3);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const i = t * H + h;
      const p = pick[i] as number;
      const dt = p < 0.02 && !slow ? 20.5 + 100 * p : p > 0.98 ? -100 - 1000 * (p - 0.98) : Math.log(Math.expm1(Math.exp(logDelta[i] as number)));
      inProj[t * width + dtAt + h] = dt - (dtBias[h] as number);
    }
  }
  return {
    T,
    H,
    P,
    G,
    N,
    xbc: randomF32(T * (H * P + 2 * G * N), caseSeed + 5, 1.5),
    inProj,
    dtBias,
    aLog: (slow ? uniformF32(H, caseSeed + 6, 0.01, 0.05) : uniformF32(H, caseSeed + 6, 0.3, 8)).map(Math.log),
    d: uniformF32(H, caseSeed + 7, -1, 1.5),
  };
}

/** Rows [from, to) of the per-token inputs. */
function slice(i: Inputs, from: number, to: number): Inputs {
  const rows = (a: Float32Array) => {
    const width = a.length / i.T;
    return a.slice(from * width, to * width);
  };
  return { ...i, T: to - from, xbc: rows(i.xbc), inProj: rows(i.inProj) };
}

function reference(i: Inputs, state: ArrayLike<number>, timeStepLimit?: readonly [number, number]) {
  const l = mamba2Layout(dimsOf(i));
  return ssdRef({
    tokens: i.T,
    nHeads: i.H,
    headDim: i.P,
    nGroups: i.G,
    dState: i.N,
    xbc: i.xbc,
    xbcStride: l.xbcWidth,
    xOffset: 0,
    bOffset: l.bOffset,
    cOffset: l.cOffset,
    dt: i.inProj,
    dtOffset: l.dtOffset,
    dtStride: l.inProjWidth,
    dtBias: i.dtBias,
    aLog: i.aLog,
    d: i.d,
    timeStepLimit,
    state,
  });
}

interface RunOptions {
  traceDelta?: boolean;
  chunkLength?: number;
  timeStepLimit?: readonly [number, number];
  /** The step's gate: z read from the xbc buffer at this offset. */
  gateOffset?: number;
  /** With the gate: the norm weight; the step writes y·silu(z)·g and the pieces of Σ (y·silu(z))². */
  normG?: Float32Array;
  /** Each of the op's kernels in a pass of its own (submitUnitsApart: as the bench's breakdown runs them). */
  apart?: boolean;
}

/** Runs the op once over `i` on the GPU, advancing `state` (a GPU buffer the caller owns). */
async function runSsd(ctx: GpuContext, i: Inputs, state: GPUBuffer, opts: RunOptions = {}) {
  const { device } = ctx;
  const { T, H, P } = i;
  const dims = dimsOf(i);
  const sources = { aLog: uploadF32(device, 'Test.aLog', i.aLog), d: uploadF32(device, 'Test.d', i.d), dtBias: uploadF32(device, 'Test.dtBias', i.dtBias) };
  const weights = packSsdWeights(ctx, sources, H, 'Test.weights');
  const buffers = {
    xbc: uploadF32(device, 'Test.xbc', i.xbc),
    inProj: uploadF32(device, 'Test.inProj', i.inProj),
    y: uploadF32(device, 'Test.y', new Float32Array(T * H * P).fill(Number.NaN)), // poisoned
    delta: opts.traceDelta ? uploadF32(device, 'Test.delta', new Float32Array(T * H).fill(Number.NaN)) : undefined,
    normG: opts.normG ? uploadF32(device, 'Test.normG', opts.normG) : undefined,
    sums: opts.normG ? uploadF32(device, 'Test.sums', new Float32Array(ssdStepNormSums(ctx, { nHeads: H, headDim: P, dState: i.N }) + 1).fill(Number.NaN)) : undefined,
  };
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = ssdScan(
      ctx,
      { tokens: T, nHeads: H, headDim: P, nGroups: i.G, dState: i.N },
      { xbc: convXbc(buffers.xbc, dims), dt: mamba2InProjDt(buffers.inProj, dims), weights, y: buffers.y, state, delta: buffers.delta },
      'Test.ssd',
      {
        chunkLength: opts.chunkLength,
        timeStepLimit: opts.timeStepLimit,
        ...(opts.gateOffset !== undefined ? { gateOffset: opts.gateOffset } : {}),
        ...(buffers.normG && buffers.sums ? { normSums: { g: buffers.normG, sums: buffers.sums } } : {}),
      },
    );
    if (opts.apart) submitUnitsApart(device, 'Test', [d]);
    else submitDispatches(device, 'Test', [d]);
    return d;
  });
  const parts = dispatch.parts?.map((p) => p.name) ?? null;
  const y = await readF32(device, buffers.y, T * H * P);
  const delta = buffers.delta ? await readF32(device, buffers.delta, T * H) : null;
  const sums = buffers.sums ? await readF32(device, buffers.sums, buffers.sums.size / 4) : null;
  dispatch.destroy();
  weights.destroy();
  for (const b of [...Object.values(sources), ...Object.values(buffers)]) b?.destroy();
  return { y, delta, sums, parts };
}

async function checkCase(ctx: GpuContext, i: Inputs, caseSeed: number, opts: RunOptions) {
  const stateSize = i.H * i.P * i.N;
  const state0 = randomF32(stateSize, caseSeed + 9, 1);
  const state = uploadF32(ctx.device, 'Test.state', state0);
  const { y, delta } = await runSsd(ctx, i, state, opts);
  const finalState = await readF32(ctx.device, state, stateSize);
  state.destroy();
  const ref = reference(i, state0, opts.timeStepLimit);
  expect(y.every(Number.isFinite), 'every y element written').toBe(true);
  expect(finalState.every(Number.isFinite), 'final state finite').toBe(true);
  expect(relativeError(y, ref.y), 'y').toBeLessThanOrEqual(TOLERANCE);
  expect(relativeError(finalState, ref.state), 'final state').toBeLessThanOrEqual(TOLERANCE);
  if (opts.traceDelta) {
    expect(delta!.every(Number.isFinite), 'every Δ element written').toBe(true);
    expect(relativeError(delta!, ref.delta), 'Δ').toBeLessThanOrEqual(DELTA_TOLERANCE);
  }
  return ref;
}

describe('ssd_scan.wgsl against its CPU reference (Dawn)', () => {
  // Odd sizes: T = 1 is the decode step, 7 one chunk, 70 and 129 several chunks of 16 or 32 (the last partial).
  let index = 0;
  for (const [H, G] of [
    [3, 1],
    [4, 1],
    [4, 2],
  ] as const) {
    for (const P of [5, 16]) {
      for (const N of [4, 16]) {
        for (const T of [1, 7, 70, 129]) {
          const chunkLength = index++ % 2 === 0 ? 16 : 32;
          const traceDelta = T !== 70 || N === 4;
          it(`H=${H} G=${G} P=${P} N=${N} T=${T} chunk=${chunkLength}${traceDelta ? ' with the Δ trace' : ''}`, async (test) => {
            if (!ctx) return test.skip(skipReason);
            const caseSeed = seed + H * 7919 + G * 1009 + P * 104729 + N * 31 + T;
            await checkCase(ctx, makeInputs(T, H, P, G, N, caseSeed), caseSeed, { traceDelta, chunkLength });
          });
        }
      }
    }
  }

  // A finite time_step_limit that binds (both ends), in prefill and in the step; P over the workgroup (two rows per thread).
  for (const [H, P, G, N, T, chunkLength] of [
    [4, 16, 2, 16, 129, 32],
    [3, 5, 1, 4, 1, 16],
    [2, 67, 1, 8, 40, 16],
  ] as const) {
    it(`H=${H} G=${G} P=${P} N=${N} T=${T} chunk=${chunkLength}, time_step_limit [0.01, 0.5]`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const caseSeed = seed + 17 * H + 13 * P + T;
      const inputs = makeInputs(T, H, P, G, N, caseSeed);
      const ref = await checkCase(ctx, inputs, caseSeed, { traceDelta: true, chunkLength, timeStepLimit: [0.01, 0.5] });
      if (T > 1) {
        expect(ref.delta.some((v) => v === 0.5)).toBe(true);
        expect(ref.delta.some((v) => v === 0.01)).toBe(true);
      }
    });
  }

  // Chunks longer than one 64-token tile (off-diagonal C·Bᵀ tiles, partial tiles), d_state and
  // head_dim over one 64-wide tile, the last chunk partial.
  // With slow decay (makeInputs `slow`) the last tiles' rows keep both terms live.
  for (const [H, P, G, N, T, chunkLength, slow] of [
    [3, 20, 1, 72, 150, 100, false],
    [4, 67, 2, 70, 131, 128, false],
    [4, 67, 2, 70, 131, 128, true],
  ] as const) {
    it(`H=${H} G=${G} P=${P} N=${N} T=${T} chunk=${chunkLength}${slow ? ', slow decay' : ''} (several tiles per chunk)`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const caseSeed = seed + 23 * H + 29 * P + 31 * N + T;
      await checkCase(ctx, makeInputs(T, H, P, G, N, caseSeed, slow), caseSeed, { traceDelta: true, chunkLength });
    });
  }

  // chunk_cumsum's workgroups: 8 heads × 32 segments of a chunk. Heads over one block (the last
  // partial), chunk lengths that are not a multiple of 32 (segments of 4 and 16 tokens, the last
  // ones short or empty), a last chunk shorter than one segment's share.
  for (const [H, P, G, N, T, chunkLength] of [
    [19, 5, 1, 4, 301, 100],
    [9, 8, 3, 8, 515, 500],
  ] as const) {
    it(`H=${H} G=${G} P=${P} N=${N} T=${T} chunk=${chunkLength} (several head blocks of the cumulative sums)`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const caseSeed = seed + 37 * H + 41 * P + 43 * N + T;
      await checkCase(ctx, makeInputs(T, H, P, G, N, caseSeed), caseSeed, { traceDelta: true, chunkLength });
    });
  }

  // The wide chunk kernels (tuning.ssdTile 'wide': chunk_states_wide, chunk_scan_wide, 128 × 64
  // tiles of 8 × 8 a thread): d_state over one 128-row tile and not a multiple of the 16-wide K
  // step, head_dim over one 64-column tile and below it, chunks of one and two 128-token row tiles
  // with a partial last chunk, several groups.
  // Slow decay (makeInputs `slow`) keeps every row of a tile live in both terms.
  for (const [H, P, G, N, T, chunkLength, slow] of [
    [3, 20, 1, 72, 150, 100, false],
    [4, 67, 2, 140, 131, 200, true],
    [2, 5, 1, 4, 300, 256, true],
    [4, 16, 2, 16, 129, 32, false],
    [3, 20, 1, 72, 150, 100, true],
  ] as const) {
    it(`H=${H} G=${G} P=${P} N=${N} T=${T} chunk=${chunkLength}${slow ? ', slow decay' : ''} (the wide tiles)`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const caseSeed = seed + 53 * H + 59 * P + 61 * N + T;
      ctx.tuning = { ssdTile: 'wide' };
      try {
        await checkCase(ctx, makeInputs(T, H, P, G, N, caseSeed, slow), caseSeed, { traceDelta: true, chunkLength });
      } finally {
        ctx.tuning = undefined;
      }
    });
  }

  it('the wide tiles in chained calls (prefill 150, prefill 9, a step) equal the narrow ones over the same 160 tokens', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [H, P, G, N, total] = [3, 67, 1, 130, 160];
    const inputs = makeInputs(total, H, P, G, N, seed + 7, true);
    const zeros = new Float32Array(H * P * N);
    const ref = reference(inputs, zeros);
    const runs: { y: Float32Array; state: Float32Array }[] = [];
    for (const ssdTile of ['wide', 'narrow'] as const) {
      const state = uploadF32(ctx.device, 'Test.state', zeros);
      const ys: number[] = [];
      ctx.tuning = { ssdTile };
      try {
        for (const [from, to] of [
          [0, 150],
          [150, 159],
          [159, 160],
        ] as const) {
          ys.push(...(await runSsd(ctx, slice(inputs, from, to), state, { chunkLength: 140 })).y);
        }
      } finally {
        ctx.tuning = undefined;
      }
      runs.push({ y: Float32Array.from(ys), state: await readF32(ctx.device, state, H * P * N) });
      state.destroy();
    }
    const [wide, narrow] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(relativeError(wide.y, ref.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(wide.state, ref.state)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(wide.y, narrow.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(wide.state, narrow.state)).toBeLessThanOrEqual(TOLERANCE);
  });

  it("the prefill's five kernels, each in a pass of its own (the bench's breakdown), compute what the op does", async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [H, P, G, N, T] = [4, 16, 2, 16, 70];
    const inputs = makeInputs(T, H, P, G, N, seed + 91);
    const state0 = randomF32(H * P * N, seed + 92, 1);
    const runs = [];
    for (const apart of [false, true]) {
      const state = uploadF32(ctx.device, 'Test.state', state0);
      const run = await runSsd(ctx, inputs, state, { chunkLength: 16, traceDelta: true, apart });
      runs.push({ ...run, state: await readF32(ctx.device, state, H * P * N) });
      state.destroy();
    }
    const [together, apart] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(together.parts).toEqual(['chunk_cumsum', 'chunk_states', 'state_passing', 'chunk_cb', 'chunk_scan']);
    expect(Array.from(apart.y)).toEqual(Array.from(together.y));
    expect(Array.from(apart.state)).toEqual(Array.from(together.state));
    expect(Array.from(apart.delta!)).toEqual(Array.from(together.delta!));
    expect(relativeError(together.y, reference(inputs, state0).y)).toBeLessThanOrEqual(TOLERANCE);
  });

  // The decode step over every lane count it picks (N / 4 lanes per state row, at least a subgroup
  // where N fills one), d_state of several batches of lanes and odd, rows spread over several
  // workgroups with a partial last one; with subgroup sums and with the barrier tree.
  it('the decode step: every lane count, subgroup sums and the barrier tree', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const c0 = ctx;
    await eachSubgroupReduction(c0, async (size) => {
      for (const [H, P, G, N] of [
        [5, 13, 1, 3],
        [4, 9, 2, 37],
        [3, 30, 3, 128],
        [2, 7, 1, 301],
      ] as const) {
        const caseSeed = seed + 41 * H + 43 * P + 47 * N + (size ?? 0);
        await checkCase(c0, makeInputs(1, H, P, G, N, caseSeed), caseSeed, { traceDelta: true, chunkLength: 16 });
      }
    });
  });

  it('the decode step with the gate: y · silu(z), z read from the xBC buffer at an offset', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [H, P, G, N] = [3, 11, 1, 20];
    const caseSeed = seed + 53;
    const i = makeInputs(1, H, P, G, N, caseSeed);
    const state0 = randomF32(H * P * N, caseSeed + 9, 1);
    const state = uploadF32(ctx.device, 'Test.state', state0);
    // z: the last H·P values of the xBC row (parts of B and C: any values serve as z).
    const gateOffset = i.xbc.length - H * P;
    const { y } = await runSsd(ctx, i, state, { gateOffset });
    const finalState = await readF32(ctx.device, state, H * P * N);
    state.destroy();
    const ref = reference(i, state0);
    const silu = (v: number) => v / (1 + Math.exp(-v));
    const gated = Float64Array.from(ref.y, (v, k) => v * silu(i.xbc[gateOffset + k]!));
    expect(relativeError(y, gated), 'y · silu(z)').toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(finalState, ref.state), 'final state').toBeLessThanOrEqual(TOLERANCE);
    const seven = makeInputs(7, H, P, G, N, caseSeed);
    const s7 = uploadF32(ctx.device, 'Test.state7', state0);
    await expect(runSsd(ctx, seven, s7, { gateOffset: 0 })).rejects.toThrow(/one-token step only/);
    s7.destroy();
  });

  it('the decode step with the gate and the norm sums: y · silu(z) · g, and Σ (y · silu(z))² in one piece per workgroup (its early loads on and off)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const c0 = ctx;
    const before = c0.tuning;
    // PREFETCH (D, z and g loaded before the states: the default) and without it (tuning.decodeLoads 'late').
    for (const tuning of [before, { ...before, decodeLoads: 'late' as const }]) {
      c0.tuning = tuning;
      await eachSubgroupReduction(c0, async () => {
        // H·P rows not a multiple of the rows per workgroup (N = 20: 8 lanes, 32 rows; N = 3: 1 lane, 256 rows).
        for (const [H, P, G, N] of [
          [3, 11, 1, 20],
          [5, 70, 5, 3],
          [2, 129, 2, 128],
        ] as const) {
          const caseSeed = seed + 59 * H + P + N;
          const i = makeInputs(1, H, P, G, N, caseSeed);
          const state0 = randomF32(H * P * N, caseSeed + 9, 1);
          const state = uploadF32(c0.device, 'Test.state', state0);
          const gateOffset = i.xbc.length - H * P;
          const normG = uniformF32(H * P, caseSeed + 11, 0.5, 1.5);
          const { y, sums } = await runSsd(c0, i, state, { gateOffset, normG });
          const finalState = await readF32(c0.device, state, H * P * N);
          state.destroy();
          const ref = reference(i, state0);
          const silu = (v: number) => v / (1 + Math.exp(-v));
          const gated = Float64Array.from(ref.y, (v, k) => v * silu(i.xbc[gateOffset + k]!));
          const count = ssdStepNormSums(c0, { nHeads: H, headDim: P, dState: N });
          const rowsPerPiece = ssdStepRowsPerWorkgroup(c0, N);
          expect(relativeError(y, Float64Array.from(gated, (v, k) => v * normG[k]!)), 'y · silu(z) · g').toBeLessThanOrEqual(TOLERANCE);
          expect(relativeError(finalState, ref.state), 'final state').toBeLessThanOrEqual(TOLERANCE);
          // Piece k holds rows k·R .. (k+1)·R − 1 (R rows a workgroup, the last piece fewer); nothing past the last piece is written.
          const expected = Array.from({ length: count }, (_, k) => gated.slice(k * rowsPerPiece, (k + 1) * rowsPerPiece).reduce((a, v) => a + v * v, 0));
          expect(relativeError(sums!.subarray(0, count), expected), 'the pieces of Σ u²').toBeLessThanOrEqual(TOLERANCE);
          expect(Number.isNaN(sums![count]), 'the slot after the last piece untouched').toBe(true);
        }
      });
    }
    c0.tuning = before;
    const i = makeInputs(1, 2, 4, 1, 8, seed);
    const state = uploadF32(c0.device, 'Test.state', new Float32Array(64));
    await expect(runSsd(c0, i, state, { normG: new Float32Array(8) })).rejects.toThrow(/needs the gate/);
    state.destroy();
  });

  // With slow decay too: the state a call leaves still matters to the next call's last tokens.
  it.for([false, true])('chained calls (prefill 70, prefill 7, three steps) equal one call over all 80 tokens (slow decay: %s)', async (slow, test) => {
    if (!ctx) return test.skip(skipReason);
    const [H, P, G, N, total] = [4, 16, 2, 16, 80];
    const inputs = makeInputs(total, H, P, G, N, seed + 5, slow);
    const zeros = new Float32Array(H * P * N);
    const ref = reference(inputs, zeros);
    const chainedState = uploadF32(ctx.device, 'Test.chainedState', zeros);
    const ys: number[] = [];
    const deltas: number[] = [];
    for (const [from, to] of [
      [0, 70],
      [70, 77],
      [77, 78],
      [78, 79],
      [79, 80],
    ] as const) {
      const { y, delta } = await runSsd(ctx, slice(inputs, from, to), chainedState, { traceDelta: true, chunkLength: 16 });
      ys.push(...y);
      deltas.push(...delta!);
    }
    const chainedFinal = await readF32(ctx.device, chainedState, H * P * N);
    const wholeState = uploadF32(ctx.device, 'Test.wholeState', zeros);
    const whole = await runSsd(ctx, inputs, wholeState, { chunkLength: 16 });
    const wholeFinal = await readF32(ctx.device, wholeState, H * P * N);
    chainedState.destroy();
    wholeState.destroy();
    expect(relativeError(ys, ref.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(chainedFinal, ref.state)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(deltas, ref.delta)).toBeLessThanOrEqual(DELTA_TOLERANCE);
    expect(relativeError(ys, whole.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(chainedFinal, wholeFinal)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('re-encoding a decode op advances the state one token each time', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const [H, P, G, N] = [4, 5, 2, 16];
    const one = makeInputs(1, H, P, G, N, seed + 6);
    const tile = (a: Float32Array) => Float32Array.from([...a, ...a, ...a]);
    const state0 = randomF32(H * P * N, seed + 7, 1);
    const ref = reference({ ...one, T: 3, xbc: tile(one.xbc), inProj: tile(one.inProj) }, state0);
    const dims = dimsOf(one);
    const sources = { aLog: uploadF32(device, 'Test.aLog', one.aLog), d: uploadF32(device, 'Test.d', one.d), dtBias: uploadF32(device, 'Test.dtBias', one.dtBias) };
    const weights = packSsdWeights(ctx, sources, H, 'Test.weights');
    const b = {
      xbc: uploadF32(device, 'Test.xbc', one.xbc),
      inProj: uploadF32(device, 'Test.inProj', one.inProj),
      y: storageBuffer(device, 'Test.y', H * P * 4),
      state: uploadF32(device, 'Test.state', state0),
    };
    const op = ssdScan(
      ctx,
      { tokens: 1, nHeads: H, headDim: P, nGroups: G, dState: N },
      { xbc: convXbc(b.xbc, dims), dt: mamba2InProjDt(b.inProj, dims), weights, y: b.y, state: b.state },
    );
    const ys: number[] = [];
    for (let step = 0; step < 3; step++) {
      device.queue.writeBuffer(b.y, 0, new Float32Array(H * P).fill(Number.NaN));
      await withErrorScopes(device, 'step', () => submitDispatches(device, 'Test', [op]));
      ys.push(...(await readF32(device, b.y, H * P)));
    }
    const finalState = await readF32(device, b.state, H * P * N);
    op.destroy();
    weights.destroy();
    for (const buffer of [...Object.values(sources), ...Object.values(b)]) buffer.destroy();
    expect(relativeError(ys, ref.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(finalState, ref.state)).toBeLessThanOrEqual(TOLERANCE);
  });

  // (N sets the decode step's lanes per state row, a pipeline constant: one per d_state.)
  it('reuses its pipelines for every T, H, P and G (shapes travel in uniforms)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const state = (n: number) => uploadF32(ctx!.device, 'Test.state', new Float32Array(n));
    const s = [state(3 * 5 * 16), state(3 * 5 * 16), state(4 * 16 * 16), state(4 * 16 * 16)];
    await runSsd(ctx, makeInputs(1, 3, 5, 1, 16, seed), s[0]!, { traceDelta: true, chunkLength: 16 });
    await runSsd(ctx, makeInputs(40, 3, 5, 1, 16, seed), s[1]!, { traceDelta: true, chunkLength: 16 });
    const before = ctx.pipelines.size;
    await runSsd(ctx, makeInputs(1, 4, 16, 2, 16, seed), s[2]!, { traceDelta: true, chunkLength: 16 });
    await runSsd(ctx, makeInputs(90, 4, 16, 2, 16, seed), s[3]!, { traceDelta: true, chunkLength: 16 });
    expect(ctx.pipelines.size).toBe(before);
    for (const b of s) b.destroy();
  });

  it('rejects bad shapes, buffers too small and written buffers bound twice, naming them', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const [T, H, P, G, N] = [10, 4, 5, 2, 4];
    const dims = dimsOf({ H, P, G, N });
    const ok = storageBuffer(device, 'Test.ok', 4 * 2000);
    const small = storageBuffer(device, 'Test.small', 16);
    const y = storageBuffer(device, 'Test.y', 4 * T * H * P);
    const state = storageBuffer(device, 'Test.state', 4 * H * P * N);
    const weights = packSsdWeights(ctx, { aLog: ok, d: ok, dtBias: ok }, H);
    const base = { xbc: convXbc(ok, dims), dt: mamba2InProjDt(ok, dims), weights, y, state };
    const shape = { tokens: T, nHeads: H, headDim: P, nGroups: G, dState: N };
    expect(() => ssdScan(ctx!, shape, { ...base, xbc: convXbc(small, dims) })).toThrow(/xbc \(x view\) \(Test\.small\) holds 16 bytes, needs 1376/);
    expect(() => ssdScan(ctx!, shape, { ...base, dt: mamba2InProjDt(small, dims) })).toThrow(/dt \(Test\.small\) holds 16 bytes, needs 2400/);
    expect(() => ssdScan(ctx!, shape, { ...base, state: small })).toThrow(/state \(Test\.small\) holds 16 bytes, needs 320/);
    expect(() => ssdScan(ctx!, shape, { ...base, y: ok })).toThrow(/y and xbc are the same buffer \(Test\.ok\)/);
    expect(() => ssdScan(ctx!, { ...shape, nGroups: 3 }, base)).toThrow(/nGroups=3 must divide nHeads=4/);
    expect(() => ssdScan(ctx!, { ...shape, nHeads: 8, nGroups: 2 }, base)).toThrow(/weights .* were packed for H=4, not H=8/);
    expect(() => ssdScan(ctx!, shape, base, 'x', { timeStepLimit: [0.5, 0.1] })).toThrow(/timeStepLimit/);
    expect(() => packSsdWeights(ctx!, { aLog: ok, d: small, dtBias: ok }, 8)).toThrow(/d \(Test\.small\) holds 16 bytes, needs 32/);
    weights.destroy();
    for (const b of [ok, small, y, state]) b.destroy();
  });
});

const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden');

async function readTensors(file: string) {
  const bytes = readFileSync(file);
  const source = memorySource(file, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const header = await readSafetensorsHeader(source);
  return async (name: string) => {
    const t = header.tensors.get(name);
    if (!t) throw new Error(`${file} has no ${name}`);
    return toFloat32(t, await readTensorBytes(source, t));
  };
}

describe('ssd_scan.wgsl and gated_rmsnorm.wgsl against transformers (golden fixtures, layer 0)', () => {
  for (const name of ['mamba2-groups', 'mamba2-one-group']) {
    const dir = path.join(goldenDir, name);
    it(`${name}: y from the golden x, B, C, Δ; the gated norm (over all of d_inner) against out_proj_in`, async (test) => {
      if (!existsSync(path.join(dir, 'golden.safetensors'))) return test.skip(`no golden fixture ${name}`);
      if (!ctx) return test.skip(skipReason);
      const { device } = ctx;
      const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, number>;
      const [H, P, G, N, L, eps] = [config.num_heads!, config.head_dim!, config.n_groups!, config.state_size!, config.chunk_size!, config.layer_norm_epsilon!];
      const Di = H * P;
      const golden = await readTensors(path.join(dir, 'golden.safetensors'));
      const model = await readTensors(path.join(dir, 'model.safetensors'));
      const [x, B, C, delta, yGolden, outGolden, emb] = await Promise.all(
        ['layers.0.x', 'layers.0.B', 'layers.0.C', 'layers.0.delta', 'layers.0.y', 'layers.0.out_proj_in', 'embeddings'].map(golden),
      );
      const mixer = 'backbone.layers.0.mixer';
      const [aLog, d, inProjW, normW, blockNormW] = await Promise.all(
        [`${mixer}.A_log`, `${mixer}.D`, `${mixer}.in_proj.weight`, `${mixer}.norm.weight`, 'backbone.layers.0.norm.weight'].map(model),
      );
      const T = delta!.length / H;
      const dims = dimsOf({ H, P, G, N });
      const layout = mamba2Layout(dims);
      const xbc = new Float32Array(T * layout.xbcWidth);
      for (let t = 0; t < T; t++) {
        xbc.set(x!.subarray(t * Di, (t + 1) * Di), t * layout.xbcWidth);
        xbc.set(B!.subarray(t * G * N, (t + 1) * G * N), t * layout.xbcWidth + layout.bOffset);
        xbc.set(C!.subarray(t * G * N, (t + 1) * G * N), t * layout.xbcWidth + layout.cOffset);
      }
      // dt = softplus⁻¹(Δ) with dt_bias 0, in an in_proj-shaped buffer (the clamp never binds: limit (0, ∞)).
      const { inProjWidth: width, dtOffset: dtAt } = layout;
      const inProj = new Float32Array(T * width);
      for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) inProj[t * width + dtAt + h] = Math.log(Math.expm1(delta![t * H + h]!));
      const inputs: Inputs = { T, H, P, G, N, xbc, inProj, dtBias: new Float32Array(H), aLog: aLog!, d: d! };

      const ref = reference(inputs, new Float32Array(H * P * N));
      expect(relativeError(ref.y, yGolden!), 'CPU reference y vs transformers').toBeLessThanOrEqual(TOLERANCE);
      const state = storageBuffer(device, 'Test.state', H * P * N * 4);
      const gpu = await runSsd(ctx, inputs, state, { traceDelta: true, chunkLength: L });
      state.destroy();
      expect(relativeError(gpu.y, yGolden!), 'GPU y vs transformers').toBeLessThanOrEqual(TOLERANCE);
      expect(relativeError(gpu.delta!, delta!), 'GPU Δ vs transformers').toBeLessThanOrEqual(DELTA_TOLERANCE);

      // z = the first Di rows of in_proj applied to RMSNorm(embeddings) · norm.weight (layer 0's input).
      const dModel = emb!.length / T;
      const zStride = width;
      const z = new Float32Array(T * zStride);
      for (let t = 0; t < T; t++) {
        let sumSq = 0;
        for (let k = 0; k < dModel; k++) sumSq += emb![t * dModel + k]! ** 2;
        const scale = 1 / Math.sqrt(sumSq / dModel + eps);
        for (let c = 0; c < Di; c++) {
          let acc = 0;
          for (let k = 0; k < dModel; k++) acc += inProjW![c * dModel + k]! * emb![t * dModel + k]! * scale * blockNormW![k]!;
          z[t * zStride + c] = acc;
        }
      }
      const b = {
        y: uploadF32(device, 'Test.y', gpu.y),
        z: uploadF32(device, 'Test.z', z),
        weight: uploadF32(device, 'Test.normWeight', normW!),
        output: uploadF32(device, 'Test.output', new Float32Array(T * Di).fill(Number.NaN)),
      };
      const op = await withErrorScopes(device, 'norm', () => {
        const o = gatedRmsNorm(ctx!, { rows: T, cols: Di, groupSize: Di, eps }, { y: b.y, z: { buffer: b.z, offset: 0, rowStride: zStride }, weight: b.weight, output: b.output });
        submitDispatches(device, 'Test', [o]);
        return o;
      });
      const out = await readF32(device, b.output, T * Di);
      op.destroy();
      for (const buffer of Object.values(b)) buffer.destroy();
      expect(out.every(Number.isFinite)).toBe(true);
      const errors = { refY: relativeError(ref.y, yGolden!), y: relativeError(gpu.y, yGolden!), delta: relativeError(gpu.delta!, delta!), out: relativeError(out, outGolden!) };
      console.info(`[ssd golden] ${name} layer 0 relative errors: ${JSON.stringify(errors)}`);
      expect(relativeError(out, outGolden!), 'gated norm vs transformers out_proj_in').toBeLessThanOrEqual(TOLERANCE);
    });
  }
});
