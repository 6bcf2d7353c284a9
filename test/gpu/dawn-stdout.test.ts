/**
 * Issue 14, item 2: Dawn printed every uncaptured GPU error on stdout (20,526 validation errors
 * in one out-of-memory run), corrupting `--json`. A process that opens the GPU as the CLI does and
 * makes validation errors must leave stdout to its own output, the errors one line each on stderr.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNodeGpu } from '../../app/node/dawn';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// Inside the repository (dist/ is ignored), so that the child resolves the "webgpu" package.
mkdirSync(path.join(repoRoot, 'dist'), { recursive: true });
const out = mkdtempSync(path.join(repoRoot, 'dist', 'dawn-stdout-'));
let skipReason = '';

beforeAll(async () => {
  try {
    await findNodeGpu();
  } catch (error) {
    skipReason = (error as Error).message;
    return;
  }
  // The child is TypeScript that imports app/: bundle it as the CLI is bundled (webgpu stays external).
  await build({
    configFile: false,
    logLevel: 'silent',
    root: repoRoot,
    build: {
      ssr: path.join(repoRoot, 'test/support/uncaptured-error-child.ts'),
      outDir: out,
      target: 'node20',
      rollupOptions: { external: ['webgpu'], output: { format: 'es', entryFileNames: 'child.mjs' } },
    },
  });
}, 120_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('Dawn never writes to stdout', () => {
  it('uncaptured validation errors go to stderr, one line each; stdout holds only the JSON', (test) => {
    if (skipReason) return test.skip(skipReason);
    const r = spawnSync(process.execPath, [path.join(out, 'child.mjs')], { encoding: 'utf8', timeout: 60_000, cwd: repoRoot });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('{"ids":[1,2,3]}\n');
    // Each error one line on stderr: the bad usage, the copy (and the submit of the invalid command buffer).
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    for (const line of lines) expect(line).toMatch(/^webgpu: uncaptured error: \S/);
    expect(lines[0]).toMatch(/Buffer usages .* is invalid.*Child\.badUsage/);
    expect(lines.slice(1).some((l) => /Child\.small/.test(l) && /copy/i.test(l))).toBe(true);
  });
});
