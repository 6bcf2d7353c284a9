/**
 * Issue 14, item 3, as the user met it: `run --prompt aaaa…!` with a `(a+)+$` Split ran for ever,
 * and so did `run --input-ids` with an added token of id 4294967294. Here the built CLI runs each
 * reproducer in a process with a deadline (so a regression fails instead of hanging the suite);
 * in-process, opening a model and loading it in the engine no longer build the tokenizer at all.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../app/engine/engine';
import { ModelFileError } from '../../app/formats/errors';
import { openRunnableModel } from '../../app/node/run-model';
import { byteLevelTokenizer, splitThenByteLevel } from '../support/tokenizer-json';
import { TINY_CONFIG, writeTinyModel } from '../support/tiny-model';
import { useNodeGpu } from '../support/gpu';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repoRoot, 'dist/cli/cli.js');
/** The tiny tokenizer's 261 ids (256 bytes, 4 merges, <|endoftext|>) fit a vocabulary of 261. */
const CONFIG = { ...TINY_CONFIG, vocab_size: 261 };
/** Seconds the CLI gets; before the fix both reproducers ran for minutes or more. */
const DEADLINE_S = 60;

const root = mkdtempSync(path.join(tmpdir(), 'tokenizer-hostile-'));
function modelWith(name: string, change: (t: ReturnType<typeof byteLevelTokenizer>) => void): string {
  const dir = writeTinyModel(path.join(root, name), CONFIG);
  const t = byteLevelTokenizer();
  change(t);
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(t));
  return dir;
}
const evilRegex = modelWith('evil-regex', (t) => (t.pre_tokenizer = splitThenByteLevel('(a+)+$')));
const evilId = (id: number) => (t: ReturnType<typeof byteLevelTokenizer>) =>
  t.added_tokens.push({ id, content: '<evil>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false });
const hugeId = modelWith('huge-id', evilId(4294967294));
// In-process tests use an id whose walk takes seconds, not minutes, should the bound regress.
const absurdId = modelWith('absurd-id', evilId(2 ** 26));

let gpu: GPU | null = null;
let skipReason = '';
useNodeGpu((found) => ({ gpu, skipReason } = found));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function runCli(args: string[]) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: DEADLINE_S * 1000 });
  return { ...r, seconds: (performance.now() - t0) / 1000 };
}

describe('hostile tokenizer.json through the CLI (a process with a deadline)', () => {
  it('run --prompt "aaaa…!" with a (a+)+$ Split: one error line naming the file and the pattern, exit 2', (test) => {
    if (!gpu) return test.skip(skipReason);
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm run build:cli)');
    const r = runCli(['run', '--model', evilRegex, '--prompt', `${'a'.repeat(40)}!`, '--max-tokens', '1']);
    expect(r.signal, `killed after ${r.seconds.toFixed(0)} s`).toBeNull();
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toBe(
      `error: ${path.join(evilRegex, 'tokenizer.json')}: pre_tokenizer.pretokenizers[0].pattern (Split) is the regex "(a+)+$", which the studio does not run: ` +
        'a regex from a file can take exponential time on some texts, so only the patterns of known tokenizers (GPT-2, Llama 3, Falcon) are run\n',
    );
    expect(r.stdout).toBe('');
  });

  it('run --input-ids with an added token of id 4294967294: a clear error at the first text, not a hang', (test) => {
    if (!gpu) return test.skip(skipReason);
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm run build:cli)');
    const r = runCli(['run', '--model', hugeId, '--input-ids', '97,98', '--max-tokens', '2', '--greedy']);
    expect(r.signal, `killed after ${r.seconds.toFixed(0)} s`).toBeNull();
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^error: .*huge-id\/tokenizer\.json: added_tokens\[1\] "<evil>" has the id 4294967294, past any id the model can use \(below the model's vocabulary of 261 and the 2 added tokens\)\n$/);
  });
});

describe('the tokenizer is built when text needs it', () => {
  it('openRunnableModel opens a model whose tokenizer.json is hostile; reading the tokenizer throws its ModelFileError', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const m = await openRunnableModel(absurdId);
    try {
      expect(m.inspection.tokenizer).toBe('tokenizer.json');
      let error: unknown;
      const t0 = performance.now();
      try {
        void m.tokenizer;
      } catch (e) {
        error = e;
      }
      expect(performance.now() - t0).toBeLessThan(500);
      expect(error).toBeInstanceOf(ModelFileError);
      expect((error as ModelFileError).file).toBe(path.join(absurdId, 'tokenizer.json'));
      expect((error as Error).message).toMatch(/has the id 67108864/);
    } finally {
      m.close();
    }
  });

  it('the engine loads it (a model of ids); a prompt, or tokens to show as text, get the error', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const engine = new Engine(gpu, () => undefined, 'node');
    const files = ['config.json', 'model.safetensors', 'tokenizer.json'].map((name) =>
      Object.assign(new Blob([readFileSync(path.join(absurdId, name))]), { name }),
    );
    const t0 = performance.now();
    const loaded = await engine.handle({ id: 1, kind: 'loadModel', params: { modelId: 'm', source: { kind: 'files', folder: 'absurd-id', files } } });
    expect(loaded).toMatchObject({ ok: true, result: { tokenizer: 'bpe', warnings: [] } });
    expect(performance.now() - t0).toBeLessThan(30_000);
    const params = { modelId: 'm', maxTokens: 2, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1, stopStrings: [] };
    const error = /^absurd-id\/tokenizer\.json: added_tokens\[1\] "<evil>" has the id 67108864/;
    expect(await engine.handle({ id: 2, kind: 'generate', params: { ...params, prompt: { text: 'the' } } })).toMatchObject({ ok: false, error: expect.stringMatching(error) });
    expect(await engine.handle({ id: 3, kind: 'generate', params: { ...params, prompt: { ids: [97, 98] } } })).toMatchObject({ ok: false, error: expect.stringMatching(error) });
    expect(await engine.handle({ id: 4, kind: 'unloadModel', params: {} })).toMatchObject({ ok: true, result: { unloaded: 'm' } });
  });
});
