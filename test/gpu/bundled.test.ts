/**
 * The bundled shakespeare-byte model on the GPU against the float64 CPU reference of the whole
 * model, and the CLI generating from it (`npm run cli -- run`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInspection } from '../../app/arch/inspect';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { generate } from '../../app/model/generate';
import type { LoadedWeights } from '../../app/model/loader';
import { buildModel } from '../../app/arch/build';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { Session } from '../../app/model/session';
import { getTestGpu, loadTestModel } from '../support/gpu';

const root = path.resolve(import.meta.dirname, '../..');
const modelDir = path.join(root, 'resources/models/shakespeare-byte');
const cli = path.join(root, 'dist/cli/cli.js');
let ctx: GpuContext | null = null;
let skipReason = '';
let inspection: ModelInspection;
let weights: LoadedWeights;
let table: Map<string, Float32Array>;

beforeAll(async () => {
  const gpu = await getTestGpu();
  if (!gpu.ctx) {
    skipReason = gpu.reason;
    return;
  }
  ctx = gpu.ctx;
  ({ inspection, weights, table } = await loadTestModel(ctx, modelDir));
});
afterAll(() => {
  weights?.destroy();
  ctx?.device.destroy();
});

describe('shakespeare-byte', () => {
  it('GPU logits at every position match the float64 reference; greedy bytes equal its argmax', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const prompt = [...new TextEncoder().encode('ROMEO:\nWhat light through yonder window breaks?\nJULIET:\n')];
    const V = inspection.config.vocabSize;
    const T = prompt.length;
    const model = buildModel(ctx, inspection, weights, 32); // several prefill chunks
    const session = new Session(ctx, model);
    const logits = storageBuffer(ctx.device, 'Test.logits', T * V * 4);
    session.prefill(prompt, { allLogits: logits });
    const ref = mamba1ForwardRef(inspection.config, (n) => table.get(n), prompt);
    const err = relativeError(await readF32(ctx.device, logits, T * V), ref.logits);
    console.info(`[shakespeare-byte] GPU vs float64 reference, logits over ${T} positions: relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
    logits.destroy();
    session.destroy();

    const fresh = new Session(ctx, model);
    const result = await generate(ctx, fresh, prompt, { maxTokens: 6, temperature: 0 });
    const ids = [...prompt];
    for (let i = 0; i < 6; i++) {
      const r = mamba1ForwardRef(inspection.config, (n) => table.get(n), ids);
      let best = 0;
      for (let v = 1; v < V; v++) if (r.logits[(ids.length - 1) * V + v]! > r.logits[(ids.length - 1) * V + best]!) best = v;
      ids.push(best);
    }
    expect(result.ids).toEqual(ids.slice(T));
    fresh.destroy();
    model.destroy();
  });

  it('npm run cli -- run streams text from it, and --json gives the greedy ids', (test) => {
    if (!ctx) return test.skip(skipReason);
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first)');
    const text = spawnSync(process.execPath, [cli, 'run', '--model', modelDir, '--prompt', 'KING:\n', '--max-tokens', '30', '--seed', '3'], { encoding: 'utf8' });
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout.length).toBeGreaterThan(20);
    expect(text.stderr).toMatch(/\[30 tokens, [\d.]+ tokens\/s, prefill \d+ ms, stop: max-tokens\]/);
    const json = spawnSync(process.execPath, [cli, 'run', '--model', modelDir, '--input-ids', '75,73,78,71,58,10', '--greedy', '--max-tokens', '5', '--json'], { encoding: 'utf8' });
    expect(json.status, json.stderr).toBe(0);
    const { ids } = JSON.parse(json.stdout) as { ids: number[] };
    expect(ids).toHaveLength(5);
    const again = spawnSync(process.execPath, [cli, 'run', '--model', modelDir, '--prompt', 'KING:\n', '--greedy', '--max-tokens', '5', '--json'], { encoding: 'utf8' });
    expect(JSON.parse(again.stdout)).toEqual({ ids }); // the prompt's bytes are those ids
  });
});
