import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext, KernelTuning } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches, submitUnitsApart } from '../../app/kernels/dispatch';
import { packSelectiveScanWeights, scanStateLanes, selectiveScan } from '../../app/kernels/selective-scan';
import { inProjZ, xProjBC } from '../../app/arch/mamba1/layout';
import { selectiveScanRef } from '../../app/kernels/selective-scan.ref';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { uniformF32, useTestGpu } from '../support/gpu';

/** fp32 scans: relative error ≤ 1e-4 on y and the final state; Δ is element-wise: ≤ 1e-5. */
const TOLERANCE = 1e-4;
const DELTA_TOLERANCE = 1e-5;
/** dt_rank: B and C sit behind R columns of dt_r in x_proj's output. */
const R = 3;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

/** One layer's inputs for T tokens, as the model would hold them. */
interface Inputs {
  T: number;
  Di: number;
  N: number;
  x: Float32Array; // [T, Di]
  dtRaw: Float32Array; // [T, Di]
  dtBias: Float32Array; // [Di]
  aLog: Float32Array; // [Di, N]
  d: Float32Array; // [Di]
  xProj: Float32Array; // [T, R + 2N]: dt_r, B, C
  inProj: Float32Array; // [T, 2 Di]: x (unused here), z
}

/**
 * Δ log-uniform in 1e-3..2 (dt = log(expm1(Δ)), split between dt_raw and dt_bias), with about 2%
 * of the entries at dt > 20 (softplus(dt) = dt) and 2% at dt < −100 (Δ underflows to 0); A in
 * −8..−0.3. With `slow`: Δ in 1e-3..0.05 and A in −0.05..−0.01, so that a state carried over a
 * chunk (exp(A·ΣΔ)) is not decayed away before the next chunk reads it.
 */
function makeInputs(T: number, Di: number, N: number, caseSeed: number, slow = false): Inputs {
  const dtBias = uniformF32(Di, caseSeed + 1, -1, 1);
  const logDelta = uniformF32(T * Di, caseSeed + 2, Math.log(1e-3), Math.log(slow ? 0.05 : 2));
  const pick = uniformF32(T * Di, caseSeed + 3, 0, slow ? 0.98 : 1);
  const dtRaw = new Float32Array(T * Di);
  for (let i = 0; i < T * Di; i++) {
    const bias = dtBias[i % Di] as number;
    const p = pick[i] as number;
    const dt = p < 0.02 ? 20.5 + 500 * p : p > 0.98 ? -100 - 1000 * (p - 0.98) : Math.log(Math.expm1(Math.exp(logDelta[i] as number)));
    dtRaw[i] = dt - bias;
  }
  return {
    T,
    Di,
    N,
    x: randomF32(T * Di, caseSeed + 4, 2),
    dtRaw,
    dtBias,
    aLog: (slow ? uniformF32(Di * N, caseSeed + 5, 0.01, 0.05) : uniformF32(Di * N, caseSeed + 5, 0.3, 8)).map(Math.log),
    d: randomF32(Di, caseSeed + 6, 1),
    xProj: randomF32(T * (R + 2 * N), caseSeed + 7, 1),
    inProj: randomF32(T * 2 * Di, caseSeed + 8, 3),
  };
}

/** Rows [from, to) of the per-token inputs. */
function slice(i: Inputs, from: number, to: number): Inputs {
  const rows = (a: Float32Array, width: number) => a.slice(from * width, to * width);
  return {
    ...i,
    T: to - from,
    x: rows(i.x, i.Di),
    dtRaw: rows(i.dtRaw, i.Di),
    xProj: rows(i.xProj, R + 2 * i.N),
    inProj: rows(i.inProj, 2 * i.Di),
  };
}

function reference(i: Inputs, state: ArrayLike<number>) {
  return selectiveScanRef({
    tokens: i.T,
    dInner: i.Di,
    dState: i.N,
    x: i.x,
    dtRaw: i.dtRaw,
    dtBias: i.dtBias,
    aLog: i.aLog,
    d: i.d,
    bc: i.xProj,
    bOffset: R,
    cOffset: R + i.N,
    bcStride: R + 2 * i.N,
    z: i.inProj,
    zOffset: i.Di,
    zStride: 2 * i.Di,
    state,
  });
}

/** Runs the op once over `i` on the GPU, advancing `state` (a GPU buffer the caller owns). */
async function runScan(ctx: GpuContext, i: Inputs, state: GPUBuffer, opts: { traceDelta?: boolean; chunkLength?: number; apart?: boolean } = {}) {
  const { device } = ctx;
  const { T, Di, N } = i;
  const sources = { aLog: uploadF32(device, 'Test.aLog', i.aLog), d: uploadF32(device, 'Test.d', i.d), dtBias: uploadF32(device, 'Test.dtBias', i.dtBias) };
  const weights = packSelectiveScanWeights(ctx, sources, { dInner: Di, dState: N }, 'Test.weights');
  const poison = new Float32Array(T * Di).fill(Number.NaN);
  const buffers = {
    x: uploadF32(device, 'Test.x', i.x),
    dtRaw: uploadF32(device, 'Test.dtRaw', i.dtRaw),
    xProj: uploadF32(device, 'Test.xProj', i.xProj),
    inProj: uploadF32(device, 'Test.inProj', i.inProj),
    y: uploadF32(device, 'Test.y', poison),
    delta: opts.traceDelta ? uploadF32(device, 'Test.delta', poison) : undefined,
  };
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = selectiveScan(
      ctx,
      { tokens: T, dInner: Di, dState: N },
      {
        x: buffers.x,
        dtRaw: buffers.dtRaw,
        weights,
        bc: xProjBC(buffers.xProj, R, N),
        z: inProjZ(buffers.inProj, Di),
        y: buffers.y,
        state,
        delta: buffers.delta,
      },
      'Test.scan',
      { chunkLength: opts.chunkLength },
    );
    if (opts.apart) submitUnitsApart(device, 'Test', [d]);
    else submitDispatches(device, 'Test', [d]);
    return d;
  });
  const parts = dispatch.parts?.map((p) => p.name) ?? null;
  const y = await readF32(device, buffers.y, T * Di);
  const delta = buffers.delta ? await readF32(device, buffers.delta, T * Di) : null;
  dispatch.destroy();
  weights.destroy();
  for (const b of [...Object.values(sources), ...Object.values(buffers)]) b?.destroy();
  return { y, delta, parts };
}

/**
 * One prefill of `inputs` from a random state under `tuning`, checked against the float64
 * reference: y, the final state and Δ (traced). Returns the run (its parts) for more checks.
 */
async function checkScan(c: GpuContext, inputs: Inputs, caseSeed: number, tuning: KernelTuning, chunkLength?: number) {
  const state0 = randomF32(inputs.Di * inputs.N, caseSeed + 9, 1);
  const state = uploadF32(c.device, 'Test.state', state0);
  c.tuning = tuning;
  let run: Awaited<ReturnType<typeof runScan>>;
  try {
    run = await runScan(c, inputs, state, { traceDelta: true, chunkLength });
  } finally {
    c.tuning = undefined;
  }
  const finalState = await readF32(c.device, state, inputs.Di * inputs.N);
  state.destroy();
  const ref = reference(inputs, state0);
  expect(run.y.every(Number.isFinite), 'every y element written').toBe(true);
  expect(relativeError(run.y, ref.y), 'y').toBeLessThanOrEqual(TOLERANCE);
  expect(relativeError(finalState, ref.state), 'final state').toBeLessThanOrEqual(TOLERANCE);
  expect(relativeError(run.delta!, ref.delta), 'Δ').toBeLessThanOrEqual(DELTA_TOLERANCE);
  return run;
}

// The channel scan (tuning.prefillScan 'channel': channel_summary, combine_chunks, channel_scan, a
// thread a channel with its N ≤ 16 states as vec4s). Odd sizes: Di not a multiple of the 64-channel
// workgroup (spare threads), N that leaves a vec4 part-used (5, 11) or one vec4 (1, 4), chunks whose
// length is not a multiple of the 16-token stage or of 4 (24, 10, 8), T not a multiple of 4, one
// chunk (the state read and written in place) and several with a partial last one.
describe("selective_scan.wgsl's channel prefill against its CPU reference (Dawn)", () => {
  for (const [Di, N, T, chunkLength, slow] of [
    [67, 16, 257, 64, false],
    [67, 16, 257, 64, true],
    [13, 5, 90, 24, true],
    [70, 11, 150, 4096, false],
    [5, 1, 37, 10, false],
    [129, 4, 61, 8, true],
    [3, 16, 7, undefined, false],
  ] as const) {
    it(`Di=${Di} N=${N} T=${T} chunkLength=${chunkLength ?? 'chosen'}${slow ? ', slow decay' : ''} with the Δ trace`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const caseSeed = seed + 41 * Di + 23 * N + T + (chunkLength ?? 0);
      const run = await checkScan(ctx, makeInputs(T, Di, N, caseSeed, slow), caseSeed, { prefillScan: 'channel' }, chunkLength);
      const chunks = Math.ceil(T / (chunkLength ?? 64));
      expect(run.parts, 'three passes when chunked, one dispatch otherwise').toEqual(chunks > 1 ? ['chunk_summary', 'combine_chunks', 'scan'] : null);
    });
  }

  it('chained calls (prefill 100, prefill 9, a step) equal the lanes scan over the same 110 tokens', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [Di, N, total] = [67, 16, 110];
    const inputs = makeInputs(total, Di, N, seed + 15);
    const zeros = new Float32Array(Di * N);
    const ref = reference(inputs, zeros);
    const results: { y: Float32Array; state: Float32Array }[] = [];
    for (const prefillScan of ['channel', 'parallel'] as const) {
      const state = uploadF32(ctx.device, 'Test.state', zeros);
      const ys: number[] = [];
      ctx.tuning = { prefillScan };
      try {
        for (const [from, to] of [
          [0, 100],
          [100, 109],
          [109, 110],
        ] as const) {
          ys.push(...(await runScan(ctx, slice(inputs, from, to), state, { chunkLength: 32 })).y);
        }
      } finally {
        ctx.tuning = undefined;
      }
      results.push({ y: Float32Array.from(ys), state: await readF32(ctx.device, state, Di * N) });
      state.destroy();
    }
    const [channel, lanes] = results as [(typeof results)[0], (typeof results)[0]];
    expect(relativeError(channel.y, ref.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(channel.state, ref.state)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(channel.y, lanes.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(channel.state, lanes.state)).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe('selective_scan.wgsl against its CPU reference (Dawn)', () => {
  // Odd sizes; T = 1 is the decode step, 7 one chunk, 100 and 257 several chunks of 64 (the last partial).
  for (const Di of [5, 67]) {
    for (const N of [4, 16]) {
      for (const T of [1, 7, 100, 257]) {
        const traceDelta = T === 7 || T === 257 || (T === 1 && N === 16);
        it(`Di=${Di} N=${N} T=${T}${traceDelta ? ' with the Δ trace' : ''}${T > 1 ? ', parallel and serial' : ''}`, async (test) => {
          if (!ctx) return test.skip(skipReason);
          const c0 = ctx;
          try {
            // A prefill both ways: the GPU's lanes and chunks, and the software adapter's serial scan.
            for (const prefillScan of T > 1 ? (['parallel', 'serial'] as const) : (['parallel'] as const)) {
              c0.tuning = { prefillScan };
              const caseSeed = seed + Di * 7919 + N * 104729 + T + (prefillScan === 'serial' ? 1 : 0);
              const inputs = makeInputs(T, Di, N, caseSeed);
              const state0 = randomF32(Di * N, caseSeed + 9, 1);
              const state = uploadF32(c0.device, 'Test.state', state0);
              const { y, delta } = await runScan(c0, inputs, state, { traceDelta });
              const finalState = await readF32(c0.device, state, Di * N);
              state.destroy();
              const ref = reference(inputs, state0);
              expect(y.every(Number.isFinite), `every y element written (${prefillScan})`).toBe(true);
              expect(finalState.every(Number.isFinite), `final state finite (${prefillScan})`).toBe(true);
              expect(relativeError(y, ref.y), `y (${prefillScan})`).toBeLessThanOrEqual(TOLERANCE);
              expect(relativeError(finalState, ref.state), `state (${prefillScan})`).toBeLessThanOrEqual(TOLERANCE);
              if (traceDelta) {
                expect(delta!.every(Number.isFinite), `every Δ element written (${prefillScan})`).toBe(true);
                expect(relativeError(delta!, ref.delta), `Δ (${prefillScan})`).toBeLessThanOrEqual(DELTA_TOLERANCE);
              }
            }
          } finally {
            c0.tuning = undefined;
          }
        });
      }
    }
  }

  // N not a power of two, and N over 32 (two states per lane); chunk lengths other than 64. A block's
  // B and C go through workgroup memory where its lanes × N ≤ 256 (N ≤ 16: 4, 16 above, 5 here) and
  // are read in place otherwise (20, 40); one chunk longer than the prefill (a single pass).
  for (const [Di, N, T, chunkLength] of [
    [9, 20, 100, 64],
    [13, 5, 90, 32],
    [11, 16, 150, 4096],
    [5, 40, 75, 32],
    [67, 16, 257, 32],
    [67, 16, 300, 128],
    [3, 16, 40, 8],
  ] as const) {
    it(`Di=${Di} N=${N} T=${T} chunkLength=${chunkLength} (the parallel scan)`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const caseSeed = seed + 31 * Di + 17 * N + T + chunkLength;
      await checkScan(ctx, makeInputs(T, Di, N, caseSeed), caseSeed, { prefillScan: 'parallel' }, chunkLength);
    });
  }

  // Slow decay: a chunk's carried state still matters at the next chunk's end (combine_chunks'
  // decay exp(A·ΣΔ) is not ~0 as with the default inputs), for the lanes and the serial scan.
  for (const prefillScan of ['parallel', 'serial'] as const) {
    it(`Di=67 N=16 T=257 chunkLength=32, slow decay (the ${prefillScan} scan)`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const [Di, N, T] = [67, 16, 257];
      const caseSeed = seed + 43 * Di + T;
      await checkScan(ctx, makeInputs(T, Di, N, caseSeed, true), caseSeed, { prefillScan, scanChunk: 64 }, prefillScan === 'parallel' ? 32 : undefined);
    });
  }

  // Fewer lanes a channel than states (tuning.scanLanes): 2, 3 and 4 states a lane, blocks of 8
  // and 4 tokens, one chunk and several; N = 20 over 8 lanes (lanes 4..7 without a third state).
  for (const [Di, N, T, chunkLength, scanLanes] of [
    [67, 16, 150, 64, 8],
    [9, 20, 90, 4096, 8],
    [13, 16, 70, 32, 4],
  ] as const) {
    it(`Di=${Di} N=${N} T=${T} chunkLength=${chunkLength}, ${scanLanes} lanes a channel (the parallel scan)`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const caseSeed = seed + 37 * Di + 19 * N + T + scanLanes;
      const tuning = { prefillScan: 'parallel', scanLanes } as const;
      expect(scanStateLanes({ ...ctx, tuning }, N, true)).toBe(scanLanes);
      await checkScan(ctx, makeInputs(T, Di, N, caseSeed), caseSeed, tuning, chunkLength);
    });
  }

  it("the chunked scan's three kernels, each in a pass of its own (the bench's breakdown), compute what the op does", async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [Di, N, T] = [21, 16, 150];
    const inputs = makeInputs(T, Di, N, seed + 77);
    const state0 = randomF32(Di * N, seed + 78, 1);
    ctx.tuning = { prefillScan: 'parallel' };
    try {
      const runs = [];
      for (const apart of [false, true]) {
        const state = uploadF32(ctx.device, 'Test.state', state0);
        const run = await runScan(ctx, inputs, state, { chunkLength: 64, apart });
        runs.push({ ...run, state: await readF32(ctx.device, state, Di * N) });
        state.destroy();
      }
      const [together, apart] = runs as [(typeof runs)[0], (typeof runs)[0]];
      expect(together.parts).toEqual(['chunk_summary', 'combine_chunks', 'scan']);
      expect(Array.from(apart.y)).toEqual(Array.from(together.y));
      expect(Array.from(apart.state)).toEqual(Array.from(together.state));
      expect(relativeError(together.y, reference(inputs, state0).y)).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      ctx.tuning = undefined;
    }
  });

  // With slow decay too: the state a call leaves still matters to the next call's last tokens.
  it.for([false, true])('chained calls (prefill 100, prefill 7, three steps) equal one call over all 110 tokens (slow decay: %s)', async (slow, test) => {
    if (!ctx) return test.skip(skipReason);
    const [Di, N, total] = [67, 16, 110];
    const inputs = makeInputs(total, Di, N, seed + 5, slow);
    const zeros = new Float32Array(Di * N);
    const ref = reference(inputs, zeros);

    const chainedState = uploadF32(ctx.device, 'Test.chainedState', zeros);
    const parts: Float32Array[] = [];
    const deltas: Float32Array[] = [];
    for (const [from, to] of [
      [0, 100],
      [100, 107],
      [107, 108],
      [108, 109],
      [109, 110],
    ] as const) {
      const { y, delta } = await runScan(ctx, slice(inputs, from, to), chainedState, { traceDelta: true });
      parts.push(y);
      deltas.push(delta!);
    }
    const chainedY = Float32Array.from(parts.flatMap((p) => [...p]));
    const chainedDelta = Float32Array.from(deltas.flatMap((p) => [...p]));
    const chainedFinal = await readF32(ctx.device, chainedState, Di * N);

    const wholeState = uploadF32(ctx.device, 'Test.wholeState', zeros);
    const whole = await runScan(ctx, inputs, wholeState);
    const wholeFinal = await readF32(ctx.device, wholeState, Di * N);
    chainedState.destroy();
    wholeState.destroy();

    expect(relativeError(chainedY, ref.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(chainedFinal, ref.state)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(chainedDelta, ref.delta)).toBeLessThanOrEqual(DELTA_TOLERANCE);
    expect(relativeError(chainedY, whole.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(chainedFinal, wholeFinal)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('re-encoding a decode op advances the state one token each time', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const [Di, N] = [33, 16];
    const inputs = makeInputs(1, Di, N, seed + 6);
    const state0 = randomF32(Di * N, seed + 7, 1);
    // The same token three times through one Dispatch.
    const ref = reference(slice({ ...inputs, T: 3, x: tile(inputs.x), dtRaw: tile(inputs.dtRaw), xProj: tile(inputs.xProj), inProj: tile(inputs.inProj) }, 0, 3), state0);
    const sources = { aLog: uploadF32(device, 'Test.aLog', inputs.aLog), d: uploadF32(device, 'Test.d', inputs.d), dtBias: uploadF32(device, 'Test.dtBias', inputs.dtBias) };
    const weights = packSelectiveScanWeights(ctx, sources, { dInner: Di, dState: N }, 'Test.weights');
    const b = {
      x: uploadF32(device, 'Test.x', inputs.x),
      dtRaw: uploadF32(device, 'Test.dtRaw', inputs.dtRaw),
      xProj: uploadF32(device, 'Test.xProj', inputs.xProj),
      inProj: uploadF32(device, 'Test.inProj', inputs.inProj),
      y: storageBuffer(device, 'Test.y', Di * 4),
      state: uploadF32(device, 'Test.state', state0),
    };
    const op = selectiveScan(
      ctx,
      { tokens: 1, dInner: Di, dState: N },
      { x: b.x, dtRaw: b.dtRaw, weights, bc: xProjBC(b.xProj, R, N), z: inProjZ(b.inProj, Di), y: b.y, state: b.state },
    );
    const ys: number[] = [];
    for (let step = 0; step < 3; step++) {
      device.queue.writeBuffer(b.y, 0, new Float32Array(Di).fill(Number.NaN));
      await withErrorScopes(device, 'step', () => submitDispatches(device, 'Test', [op]));
      ys.push(...(await readF32(device, b.y, Di)));
    }
    const finalState = await readF32(device, b.state, Di * N);
    op.destroy();
    weights.destroy();
    for (const buffer of [...Object.values(sources), ...Object.values(b)]) buffer.destroy();
    expect(relativeError(ys, ref.y)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(finalState, ref.state)).toBeLessThanOrEqual(TOLERANCE);

    function tile(a: Float32Array): Float32Array {
      return Float32Array.from([...a, ...a, ...a]);
    }
  });

  it('reuses its pipelines for every T and Di (shapes travel in uniforms)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const state = (Di: number) => uploadF32(ctx!.device, 'Test.state', new Float32Array(Di * 16));
    const first = [state(6), state(11)];
    await runScan(ctx, makeInputs(1, 6, 16, seed), first[0]!, { traceDelta: true });
    await runScan(ctx, makeInputs(150, 6, 16, seed), first[1]!, { traceDelta: true });
    const before = ctx.pipelines.size;
    const second = [state(13), state(29)];
    await runScan(ctx, makeInputs(1, 13, 16, seed), second[0]!, { traceDelta: true });
    await runScan(ctx, makeInputs(201, 29, 16, seed), second[1]!, { traceDelta: true });
    expect(ctx.pipelines.size).toBe(before);
    for (const b of [...first, ...second]) b.destroy();
  });

  it('rejects buffers too small for the shape, and written buffers bound twice, naming them', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const [T, Di, N] = [10, 8, 4];
    const ok = storageBuffer(device, 'Test.ok', 4 * 1000);
    const small = storageBuffer(device, 'Test.small', 16);
    const y = storageBuffer(device, 'Test.y', 4 * T * Di);
    const state = storageBuffer(device, 'Test.state', 4 * Di * N);
    const weights = packSelectiveScanWeights(ctx, { aLog: ok, d: ok, dtBias: ok }, { dInner: Di, dState: N });
    const base = { x: ok, dtRaw: ok, weights, bc: xProjBC(ok, R, N), z: inProjZ(ok, Di), y, state };
    const shape = { tokens: T, dInner: Di, dState: N };
    expect(() => selectiveScan(ctx!, shape, { ...base, dtRaw: small })).toThrow(/dtRaw \(Test\.small\) holds 16 bytes, needs 320/);
    expect(() => selectiveScan(ctx!, shape, { ...base, z: inProjZ(small, Di) })).toThrow(/z \(Test\.small\) holds 16 bytes, needs 640/);
    expect(() => selectiveScan(ctx!, shape, { ...base, bc: xProjBC(small, R, N) })).toThrow(/bc \(B view\) \(Test\.small\) holds 16 bytes, needs 424/);
    expect(() => selectiveScan(ctx!, shape, { ...base, state: small })).toThrow(/state \(Test\.small\) holds 16 bytes, needs 128/);
    expect(() => selectiveScan(ctx!, shape, { ...base, y: ok })).toThrow(/y and x are the same buffer \(Test\.ok\)/);
    expect(() => selectiveScan(ctx!, { ...shape, dState: 300 }, base)).toThrow(/dState must be an integer in 1\.\.256/);
    expect(() => selectiveScan(ctx!, { ...shape, dInner: 9 }, base)).toThrow(/weights .* were packed for Di=8, N=4/);
    expect(() => packSelectiveScanWeights(ctx!, { aLog: ok, d: small, dtBias: ok }, { dInner: Di, dState: N })).toThrow(/d \(Test\.small\) holds 16 bytes, needs 32/);
    weights.destroy();
    for (const b of [ok, small, y, state]) b.destroy();
  });
});
