/**
 * The CLI's `pull` (app/node/pull.ts, called by app/cli.ts) against the test Hub: the model's path
 * on the last stdout line, progress on stderr, a second pull that finds everything in place,
 * `error: …` and a non-zero status on a gated repo without HF_TOKEN and on a full disk, and the
 * proxy rule (NO_PROXY) it reports on.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullCommand, proxyFor, type PullIo } from '../../app/node/pull';
import { fixtureBytes, selectiveCopyFiles, startHubServer, type HubServer } from '../support/hub-server';

const COMMIT = '1'.repeat(40);
const files = selectiveCopyFiles();
let server: HubServer;

beforeAll(async () => {
  server = await startHubServer([
    { repo: 'studio/selective-copy', commit: COMMIT, files, modelType: 'mamba' },
    { repo: 'studio/gated', commit: COMMIT, files, modelType: 'mamba', gated: true },
    { repo: 'studio/quants-GGUF', commit: COMMIT, files: { 'q-Q4_0.gguf': fixtureBytes(3000), 'q-Q8_0.gguf': fixtureBytes(5000) }, tags: ['gguf', 'mamba'] },
  ]);
});
afterAll(() => server.close());

function run(args: string[], env: Record<string, string> = {}, extra: Partial<PullIo> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: PullIo = { env: { HF_ENDPOINT: server.endpoint, ...env }, stdout: (t) => out.push(t), stderr: (t) => err.push(t), partMinBytes: 100_000, ...extra };
  return pullCommand(args, io).then((code) => ({ code, stdout: out.join(''), stderr: err.join('') }));
}

describe('cli pull', () => {
  it('downloads the checkpoint and prints its folder on the last line; a second pull downloads nothing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pull-'));
    const first = await run(['https://huggingface.co/studio/selective-copy', '--dir', dir]);
    expect(first.stderr).not.toMatch(/error/);
    expect(first.code).toBe(0);
    const folder = path.join(dir, 'models--studio--selective-copy', 'snapshots', COMMIT);
    expect(first.stdout.trim().split('\n').at(-1)).toBe(folder);
    expect(first.stderr).toMatch(/studio\/selective-copy @ 111111111111: safetensors, 3 files, 963 kB → /);
    expect(first.stderr).toMatch(/963 kB \/ 963 kB \(100\.0%\)/);
    expect(readFileSync(path.join(folder, 'model.safetensors')).equals(Buffer.from(files['model.safetensors'] as Uint8Array))).toBe(true);
    server.cdnRequests.length = 0;
    const second = await run(['studio/selective-copy', '--dir', dir]);
    expect(second.code).toBe(0);
    expect(second.stdout.trim()).toBe(folder);
    expect(server.cdnRequests).toEqual([]);
  });

  it('--file picks a GGUF quant; without it a repo of several quants is an error listing them', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pull-'));
    const pulled = await run(['studio/quants-GGUF', '--file', 'q-Q8_0.gguf', '--dir', dir]);
    expect(pulled.code).toBe(0);
    expect(pulled.stdout.trim()).toBe(path.join(dir, 'models--studio--quants-GGUF', 'snapshots', COMMIT, 'q-Q8_0.gguf'));
    expect(existsSync(path.join(dir, 'models--studio--quants-GGUF', 'snapshots', COMMIT, 'q-Q4_0.gguf'))).toBe(false);
    const ambiguous = await run(['studio/quants-GGUF', '--dir', dir]);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toBe('error: studio/quants-GGUF has 2 GGUF files: choose one (q-Q4_0.gguf, q-Q8_0.gguf)\n');
  });

  it('exits 1 with error: … for a gated repo without HF_TOKEN, and pulls it with one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pull-'));
    const refused = await run(['studio/gated', '--dir', dir]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^error: studio\/gated is gated or private: a Hugging Face access token is needed/);
    const ok = await run(['studio/gated', '--dir', dir], { HF_TOKEN: server.token });
    expect(ok.code).toBe(0);
  });

  it('exits 1 naming the folder when the disk is full, and on a bad argument', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pull-'));
    const full = await run(['studio/selective-copy', '--dir', dir], {}, { statfs: async () => ({ bavail: 1, bsize: 4096 }) });
    expect(full.code).toBe(1);
    expect(full.stderr).toContain(`error: Not enough free disk space in ${dir}: studio/selective-copy needs 963 kB more, only 4.10 kB free`);
    expect((await run(['studio/x', '--bogus', '1'])).stderr).toBe('error: unknown argument "--bogus"\n');
    expect((await run(['studio/nothing', '--dir', dir])).stderr).toMatch(/^error: Model studio\/nothing was not found on 127\.0\.0\.1:\d+ \(HTTP 404\)\n$/);
  });

  it('proxyFor: HTTPS_PROXY unless NO_PROXY names the host (or a parent domain, or *)', () => {
    const env = { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'localhost,.internal.example' };
    expect(proxyFor('https://huggingface.co', env)).toBe('http://proxy:3128');
    expect(proxyFor('https://hub.internal.example', env)).toBeNull();
    expect(proxyFor('https://localhost:8080', env)).toBeNull();
    expect(proxyFor('http://huggingface.co', env)).toBeNull();
    expect(proxyFor('https://huggingface.co', { ...env, NO_PROXY: '*' })).toBeNull();
  });
});
