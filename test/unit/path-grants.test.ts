/**
 * A compromised renderer (issue 14, item 6): through the real IPC listener and the real library,
 * a page script that calls openModelPaths with paths of its choosing opens nothing and learns
 * nothing (not whether the path exists, not a byte of it); only grants main handed out — for the
 * command line / "open with", or for a dropped File through the preload's own channel — open a
 * path, once, from the window they were given to. Errors sent to the renderer never quote a file.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { invokeArgs, type Handlers, type ModelEntry } from '../../app/contract';
import { makeInvokeListener, messageForRenderer, MAX_RENDERER_MESSAGE, trustedOrigin, type CallContext } from '../../main/ipc';
import { Library } from '../../main/library';
import { makeDropGrantListener, openGrantedPaths, PathGrants } from '../../main/path-grants';
import { writeTinyModel } from '../support/tiny-model';

type FakeEvent = Parameters<ReturnType<typeof makeInvokeListener>>[0];
function fakeEvent(senderId = 7, url = 'app://studio/index.html'): FakeEvent {
  const mainFrame = { url };
  return { senderFrame: mainFrame, sender: { id: senderId, mainFrame } } as unknown as FakeEvent;
}
const trusted = trustedOrigin('app://studio');

function setup() {
  const root = mkdtempSync(path.join(tmpdir(), 'grants-'));
  const library = new Library(path.join(root, 'bundled'), path.join(root, 'userData'));
  const open = vi.fn((p: string) => library.open(p));
  const grants = new PathGrants();
  const handlers = {
    openModelPaths: openGrantedPaths(grants, open),
  } as unknown as Handlers<CallContext>;
  const listener = makeInvokeListener('openModelPaths', handlers, trusted);
  const drop = makeDropGrantListener(grants, trusted);
  return { root, library, open, grants, listener, drop };
}

describe('openModelPaths takes grants, never paths', () => {
  it('refuses a path from the page before anything is opened, whether or not it exists', async () => {
    const { root, open, listener } = setup();
    const model = writeTinyModel(path.join(root, 'exists'));
    for (const target of [model, path.join(root, 'missing'), '/etc/hostname']) {
      const reply = await listener(fakeEvent(), [target]);
      expect(reply).toEqual({
        ok: false,
        error: { code: 'invalid-arguments', message: 'openModelPaths[0][0]: expected a path grant (models are opened by grant, never by path)' },
      });
    }
    expect(open).not.toHaveBeenCalled();
  });

  it('refuses made-up, used, expired and other windows\' grants with one message that names no path', async () => {
    const { root, open, listener, grants } = setup();
    const model = writeTinyModel(path.join(root, 'm'));
    const refused = {
      ok: false,
      error: {
        code: 'forbidden',
        message: 'openModelPaths: 1 of 1 grant(s) unknown, expired or already used; models are opened from the Open dialog, by dropping them on the window, or from the command line',
      },
    };
    expect(await listener(fakeEvent(), ['0'.repeat(64)])).toEqual(refused);
    const other = grants.grant(model, 8, 'os');
    expect(await listener(fakeEvent(7), [other])).toEqual(refused); // given to window 8
    expect(await listener(fakeEvent(8), [other])).toEqual(refused); // and used up by the attempt
    const once = grants.grant(model, 7, 'os');
    expect(await listener(fakeEvent(7), [once])).toMatchObject({ ok: true, value: [{ name: 'm' }] });
    expect(await listener(fakeEvent(7), [once])).toEqual(refused);
    expect(open).toHaveBeenCalledTimes(1);
    let now = 0;
    const timed = new PathGrants({ ttlMs: 1000, now: () => now });
    const token = timed.grant(model, 7, 'os');
    now = 1001;
    expect(timed.take(token, 7)).toBeUndefined();
  });

  it('keeps at most `max` grants outstanding, dropping the oldest', () => {
    const grants = new PathGrants({ max: 3 });
    const tokens = ['/a', '/b', '/c', '/d'].map((p) => grants.grant(p, 1, 'os'));
    expect(grants.size).toBe(3);
    expect(grants.take(tokens[0] as string, 1)).toBeUndefined();
    expect(grants.take(tokens[3] as string, 1)).toEqual({ path: '/d', source: 'os' });
    expect(tokens.every((t) => /^[0-9a-f]{64}$/.test(t))).toBe(true);
    expect(new Set(tokens).size).toBe(4);
  });

  it('the contract validates grants: hex tokens of 64 characters, at most 64 of them', () => {
    expect(invokeArgs.openModelPaths([['a'.repeat(64)]], 'openModelPaths')).toEqual([['a'.repeat(64)]]);
    expect(() => invokeArgs.openModelPaths([['A'.repeat(64)]], 'openModelPaths')).toThrow('openModelPaths[0][0]: expected a path grant');
    expect(() => invokeArgs.openModelPaths([['a'.repeat(65)]], 'openModelPaths')).toThrow('openModelPaths[0][0]: string longer than 64 characters');
    expect(() => invokeArgs.openModelPaths([Array.from({ length: 65 }, () => 'a'.repeat(64))], 'openModelPaths')).toThrow('array longer than 64');
  });
});

describe('drops become grants through the preload\'s channel', () => {
  it('grants an absolute path from the studio page, usable once by the same window', async () => {
    const { root, drop, listener } = setup();
    const model = writeTinyModel(path.join(root, 'dropped'));
    const reply = drop(fakeEvent(7), model);
    expect(reply).toMatchObject({ ok: true, value: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const token = (reply as { value: string }).value;
    const opened = await listener(fakeEvent(7), [token]);
    expect(opened).toMatchObject({ ok: true, value: [{ name: 'dropped', path: model }] });
    expect((opened as { value: ModelEntry[] }).value[0]?.files).toEqual(['config.json', 'model.safetensors']);
  });

  it('refuses other frames, relative paths and wrong arguments', () => {
    const { drop, grants } = setup();
    expect(drop(fakeEvent(7, 'https://evil.example/'), '/x')).toEqual({ ok: false, error: { code: 'forbidden', message: 'drop: call from an untrusted frame refused' } });
    expect(drop(fakeEvent(), 'relative/model')).toEqual({ ok: false, error: { code: 'invalid-arguments', message: 'drop: expected an absolute path' } });
    expect(drop(fakeEvent(), 42)).toEqual({ ok: false, error: { code: 'invalid-arguments', message: 'drop: drop[0]: expected a string, got number' } });
    expect(drop(fakeEvent(), '/a', '/b')).toEqual({ ok: false, error: { code: 'invalid-arguments', message: 'drop: expected 1 argument' } });
    expect(grants.size).toBe(0);
  });
});

describe('errors sent to the renderer', () => {
  it('never quote a config.json, even for a path the user chose', async () => {
    const { root, listener, grants } = setup();
    const dir = path.join(root, 'broken');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'config.json'), '{"api_key": sk-SECRET-0123456789}');
    writeFileSync(path.join(dir, 'model.safetensors'), '');
    const reply = await listener(fakeEvent(), [grants.grant(dir, 7, 'drop')]);
    expect(reply).toEqual({
      ok: false,
      error: { code: 'failed', message: `${path.join(dir, 'config.json')}: not valid JSON (Unexpected character (the text is not shown))` },
    });
  });

  it('opens the good models of a drop and reports the bad ones together', async () => {
    const { root, listener, grants, library } = setup();
    const good = writeTinyModel(path.join(root, 'good'));
    const reply = await listener(fakeEvent(), [grants.grant(path.join(root, 'nope'), 7, 'drop'), grants.grant(good, 7, 'drop')]);
    expect(reply).toEqual({ ok: false, error: { code: 'failed', message: `${path.join(root, 'nope')}: not found` } });
    expect((await library.list()).map((e) => e.name)).toEqual(['good']);
  });

  it('are capped in length, and JSON.parse snippets are removed', () => {
    expect(messageForRenderer(new Error('x'.repeat(100_000)))).toHaveLength(MAX_RENDERER_MESSAGE);
    expect(messageForRenderer(new Error(`a.json: not valid JSON (Unexpected token 's', "{"a": secretvalu"... is not valid JSON)`))).toBe(
      'a.json: not valid JSON (Unexpected character (the text is not shown))',
    );
    expect(messageForRenderer(new Error(`b.json: Unexpected token ''', "'''" is not valid JSON`))).toBe('b.json: Unexpected character (the text is not shown)');
    expect(messageForRenderer(new Error('c.json: Unexpected token s in JSON at position 7'))).toBe('c.json: Unexpected character in JSON at position 7');
    expect(messageForRenderer(new Error(`d.json: Unexpected token 's', ..."api_key": sk-SECRET-"... is not valid JSON`))).toBe(
      'd.json: Unexpected character (the text is not shown)',
    );
    // Text from the file that itself says "is not valid JSON" does not end the redaction early.
    expect(messageForRenderer(new Error(`e.json: Unexpected token 'x', ..."a": x" is not valid JSON SECRET"... is not valid JSON`))).toBe(
      'e.json: Unexpected character (the text is not shown)',
    );
    expect(messageForRenderer(new Error('f.json: "undefined" is not valid JSON'))).toBe('f.json: not valid JSON (the text is not shown)');
    expect(messageForRenderer('plain')).toBe('plain');
  });
});
