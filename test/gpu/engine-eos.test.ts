/**
 * Issue 15, defect 13: generation stops at the model's end-of-sequence token. A random model's
 * greedy continuation is found first (no eos declared: it runs to max tokens); then the same model
 * declares one of those ids as its eos (generation_config.json, or config.json for the CLI) and
 * the engine stops right before it (stopReason 'end-of-text', the id not emitted), on both decode
 * paths (pipelined, and step by step with the live trace); with `ignoreEos` / `--ignore-eos` it
 * runs on to max tokens exactly as before. On the old code (eos read nowhere) every run went on to
 * max tokens, so the stops asserted here fail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../app/engine/engine';
import type { EngineEvent, GenerateParams, GenerateSummary, LoadedModelInfo } from '../../app/engine/protocol';
import { testSeed, useNodeGpu } from '../support/gpu';
import { writeRandomMamba1 } from '../support/random-model';
import { filesSource } from '../support/engine-source';

const RAW = { model_type: 'mamba', vocab_size: 256, hidden_size: 16, num_hidden_layers: 2, state_size: 4, time_step_rank: 2 };
const MAX = 10;
const PROMPT = [72, 101, 108];
const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'dist/cli/cli.js');
const scratch = mkdtempSync(path.join(tmpdir(), 'engine-eos-'));
let gpu: GPU | null = null;
let skipReason = '';
useNodeGpu((found) => ({ gpu, skipReason } = found));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const seed = testSeed();
writeRandomMamba1(scratch, RAW, seed);

async function loaded(engine: Engine, names: string[]): Promise<LoadedModelInfo> {
  const reply = await engine.handle({ id: 1, kind: 'loadModel', params: { modelId: 'random', source: filesSource(scratch, names, 'random') } });
  if (!reply.ok) throw new Error(reply.error);
  return reply.result as LoadedModelInfo;
}

async function generated(engine: Engine, extra: Partial<GenerateParams>): Promise<GenerateSummary> {
  const params: GenerateParams = { modelId: 'random', prompt: { ids: PROMPT }, maxTokens: MAX, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, stopStrings: [], ...extra };
  const reply = await engine.handle({ id: 2, kind: 'generate', params });
  if (!reply.ok) throw new Error(reply.error);
  return reply.result as GenerateSummary;
}

/** The last position k whose greedy id did not come before it (so an eos of that id first appears at k). */
function stopPosition(ids: number[]): number {
  for (let k = ids.length - 1; k > 0; k--) if (!ids.slice(0, k).includes(ids[k]!)) return k;
  return 0;
}

describe('engine: stop at the end-of-sequence token', () => {
  it('stops before the eos id with stopReason end-of-text (not emitted); ignoreEos runs to max tokens', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const events: EngineEvent[] = [];
    const engine = new Engine(gpu, (e) => events.push(e), 'node');
    // No eos declared: the greedy continuation, to max tokens.
    expect((await loaded(engine, ['config.json', 'model.safetensors'])).eosTokenIds).toEqual([]);
    const free = await generated(engine, {});
    expect(free.stopReason).toBe('max-tokens');
    expect(free.ids).toHaveLength(MAX);
    const k = stopPosition(free.ids);
    const eos = free.ids[k]!;
    console.info(`[eos] greedy ids ${free.ids.join(' ')}; eos = ${eos}, first at ${k} (seed ${seed})`);

    writeFileSync(path.join(scratch, 'generation_config.json'), JSON.stringify({ eos_token_id: [eos] }));
    const info = await loaded(engine, ['config.json', 'generation_config.json', 'model.safetensors']);
    expect(info.eosTokenIds).toEqual([eos]);
    for (const trace of [false, true]) {
      events.length = 0;
      const stopped = await generated(engine, { trace });
      expect(stopped.stopReason, `trace ${trace}`).toBe('end-of-text');
      expect(stopped.ids, `trace ${trace}`).toEqual(free.ids.slice(0, k));
      // The eos itself is not emitted: one token event per id before it (and the text tail only).
      const tokens = events.filter((e): e is Extract<EngineEvent, { kind: 'token' }> => e.kind === 'token' && e.index >= 0);
      expect(tokens.map((e) => e.id)).toEqual(free.ids.slice(0, k));
      // Its text is that of the k tokens before it: what a run limited to k tokens gives.
      expect(stopped.text).toBe((await generated(engine, { trace, ignoreEos: true, maxTokens: k })).text);

      const ignored = await generated(engine, { trace, ignoreEos: true });
      expect(ignored.stopReason, `trace ${trace}`).toBe('max-tokens');
      expect(ignored.ids, `trace ${trace}`).toEqual(free.ids);
    }
  });

  it('the CLI stops there too (stop: end of text), and --ignore-eos runs on', (test) => {
    if (!gpu) return test.skip(skipReason);
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first)');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [cli, 'run', '--model', scratch, '--input-ids', PROMPT.join(','), '--greedy', '--max-tokens', String(MAX), ...args], { encoding: 'utf8', timeout: 120_000 });
    rmSync(path.join(scratch, 'generation_config.json'), { force: true });
    const free = run('--json');
    expect(free.status, free.stderr).toBe(0);
    const ids = (JSON.parse(free.stdout) as { ids: number[] }).ids;
    expect(ids).toHaveLength(MAX);
    const k = stopPosition(ids);
    // This time config.json declares it (an integer).
    writeFileSync(path.join(scratch, 'config.json'), JSON.stringify({ ...RAW, eos_token_id: ids[k] }));
    const stopped = run('--json');
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(JSON.parse(stopped.stdout)).toEqual({ ids: ids.slice(0, k) });
    const text = run();
    expect(text.status, text.stderr).toBe(0);
    expect(text.stderr).toMatch(new RegExp(`\\[${k} tokens, [\\d.]+ tokens/s, prefill \\d+ ms, stop: end of text\\]`));
    const ignored = run('--ignore-eos', '--json');
    expect(ignored.status, ignored.stderr).toBe(0);
    expect(JSON.parse(ignored.stdout)).toEqual({ ids });
  });
});
