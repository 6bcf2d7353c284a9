/**
 * Main's handling of session and trace files the OS hands over (main/session-files.ts): a
 * .mamba-session or a trace .safetensors is told from a model by its header; a granted one is
 * read once for the window it was granted to; a grant cannot read a model or any other file, nor
 * be used twice or by another window; an oversized file is refused before it is read.
 */
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeSession } from '../../app/analysis/session';
import { encodeSafetensors } from '../../app/formats/safetensors-write';
import { classifyOpenedPath, MAX_SESSION_FILE_BYTES, readGrantedSessionFile, splitOpenedPaths } from '../../main/session-files';
import { PathGrants } from '../../main/path-grants';
import { writeTinyModel } from '../support/tiny-model';

function files() {
  const dir = mkdtempSync(path.join(tmpdir(), 'session-files-'));
  const session = path.join(dir, 'a.mamba-session');
  writeFileSync(session, encodeSession({ model: null, prompts: { trace: 'x', generate: null }, view: { layer: 0, hoverToken: null, memoryToken: null, scoreMode: null } }, null));
  const trace = path.join(dir, 'trace.safetensors');
  writeFileSync(trace, encodeSafetensors({}, { format: 'mamba-studio/trace@1' }));
  const model = writeTinyModel(path.join(dir, 'model'));
  return { dir, session, trace, model, weights: path.join(model, 'model.safetensors') };
}

describe('session files handed over by the OS', () => {
  it('tells sessions and traces from models by their header', async () => {
    const f = files();
    expect(await classifyOpenedPath(f.session)).toBe('session');
    expect(await classifyOpenedPath(f.trace)).toBe('trace');
    expect(await classifyOpenedPath(f.weights)).toBe('model');
    expect(await classifyOpenedPath(f.model)).toBe('model');
    expect(await classifyOpenedPath(path.join(f.dir, 'missing.safetensors'))).toBe('model');
    expect(await splitOpenedPaths([f.model, f.session, f.trace])).toEqual({ models: [f.model], sessions: [f.session, f.trace] });
  });

  it('reads a granted session once, for its window only, and nothing that is not a session or trace', async () => {
    const f = files();
    const grants = new PathGrants();
    const read = readGrantedSessionFile(grants);
    const token = grants.grant(f.session, 1, 'os');
    await expect(read({ senderId: 2 }, token)).rejects.toThrow(/grant unknown, expired or already used/);
    const again = grants.grant(f.session, 1, 'os');
    const got = await read({ senderId: 1 }, again);
    expect(got.name).toBe('a.mamba-session');
    expect(got.bytes[8]).toBe('{'.charCodeAt(0));
    await expect(read({ senderId: 1 }, again)).rejects.toThrow(/already used/);
    await expect(read({ senderId: 1 }, grants.grant(f.weights, 1, 'os'))).rejects.toThrow(/model\.safetensors: not a session or an exported trace/);
    await expect(read({ senderId: 1 }, grants.grant(path.join(f.model, 'config.json'), 1, 'os'))).rejects.toThrow(/not a session/);
  });

  it('refuses a file larger than the limit before reading it', async () => {
    const f = files();
    const big = path.join(f.dir, 'big.mamba-session');
    writeFileSync(big, encodeSession({ model: null, prompts: { trace: null, generate: null }, view: { layer: 0, hoverToken: null, memoryToken: null, scoreMode: null } }, null));
    truncateSync(big, MAX_SESSION_FILE_BYTES + 1); // sparse: no disk used
    const grants = new PathGrants();
    await expect(readGrantedSessionFile(grants)({ senderId: 1 }, grants.grant(big, 1, 'os'))).rejects.toThrow(/big\.mamba-session: 1\.0 GiB is larger than any session/);
  });
});
