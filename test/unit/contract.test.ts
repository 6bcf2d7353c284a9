import { describe, expect, it } from 'vitest';
import { invokeArgs, invokeNames, type Handlers } from '../../app/contract';
import { ValidationError, v } from '../../app/validate';
import { makeInvokeListener, registerHandlers, trustedOrigin, type CallContext } from '../../main/ipc';

type FakeEvent = Parameters<ReturnType<typeof makeInvokeListener>>[0];

function fakeEvent(url: string, opts: { subframe?: boolean } = {}): FakeEvent {
  const mainFrame = { url };
  const frame = opts.subframe ? { url } : mainFrame;
  return { senderFrame: frame, sender: { id: 7, mainFrame } } as unknown as FakeEvent;
}

const handlers: Handlers<CallContext> = {
  getAppInfo: () => ({ name: 'Mamba Studio', version: '0', shell: 'desktop', versions: {}, platform: 'test' }),
  listModels: () => [],
  getNotices: () => [],
  openModelDialog: () => null,
  openModelPaths: (_ctx, paths) => paths.map((p) => { throw new Error(`${p}: no model here`); }),
  readSessionFile: () => ({ name: 'a.mamba-session', bytes: new Uint8Array(0) }),
  removeModel: (ctx, id) => {
    if (id === 'boom') throw new Error('removal failed');
    return [{ id, name: `by ${ctx.senderId}`, source: 'user', format: 'gguf', architecture: 'mamba', files: [], baseUrl: '', sizeBytes: 0 }];
  },
  ...Object.fromEntries(
    ['hubLookup', 'hubSearch', 'hubPlan', 'hubDownload', 'hubJobs', 'hubPause', 'hubResume', 'hubCancel', 'hubSettings', 'hubSetToken', 'hubChooseModelsFolder'].map((n) => [
      n,
      () => {
        throw new Error(`${n}: not in this test`);
      },
    ]),
  ) as unknown as Pick<Handlers<CallContext>, 'hubLookup' | 'hubSearch' | 'hubPlan' | 'hubDownload' | 'hubJobs' | 'hubPause' | 'hubResume' | 'hubCancel' | 'hubSettings' | 'hubSetToken' | 'hubChooseModelsFolder'>,
};
const trusted = trustedOrigin('app://studio');

describe('the contract', () => {
  it('has a validator for every method and one channel each', () => {
    expect(invokeNames.sort()).toEqual([
      'getAppInfo', 'getNotices', 'hubCancel', 'hubChooseModelsFolder', 'hubDownload', 'hubJobs', 'hubLookup', 'hubPause', 'hubPlan', 'hubResume', 'hubSearch', 'hubSetToken', 'hubSettings',
      'listModels', 'openModelDialog', 'openModelPaths', 'readSessionFile', 'removeModel',
    ]);
    const channels: string[] = [];
    registerHandlers({ handle: (channel: string) => void channels.push(channel) } as never, handlers, trusted);
    expect(channels.sort()).toEqual(invokeNames.map((n) => `studio:invoke:${n}`).sort());
  });

  it('validates argument lists', () => {
    const grant = 'ab'.repeat(32);
    expect(invokeArgs.openModelPaths([[grant, grant]], 'openModelPaths')).toEqual([[grant, grant]]);
    expect(() => invokeArgs.openModelPaths([grant], 'openModelPaths')).toThrow(/openModelPaths\[0\]: expected an array/);
    expect(() => invokeArgs.openModelPaths([['/a']], 'openModelPaths')).toThrow('openModelPaths[0][0]: expected a path grant');
    expect(() => invokeArgs.removeModel([], 'removeModel')).toThrow(/expected 1 argument/);
    expect(() => invokeArgs.removeModel([''], 'removeModel')).toThrow(/non-empty/);
    expect(() => invokeArgs.listModels([1], 'listModels')).toThrow(ValidationError);
  });

  it('validates the hub methods strictly: repo ids, download ids, tokens', () => {
    expect(invokeArgs.hubDownload(['state-spaces/mamba-130m-hf', 'main', 'safetensors'], 'hubDownload')).toEqual(['state-spaces/mamba-130m-hf', 'main', 'safetensors']);
    expect(() => invokeArgs.hubDownload(['../etc', 'main', 'x'], 'hubDownload')).toThrow('hubDownload[0]: expected a Hub repo id');
    expect(() => invokeArgs.hubDownload(['a/b/c', 'main', 'x'], 'hubDownload')).toThrow(/expected a Hub repo id/);
    expect(() => invokeArgs.hubPause(['1234'], 'hubPause')).toThrow('hubPause[0]: expected a download id');
    expect(invokeArgs.hubCancel(['ab'.repeat(16)], 'hubCancel')).toEqual(['ab'.repeat(16)]);
    expect(invokeArgs.hubSetToken([null], 'hubSetToken')).toEqual([null]);
    expect(invokeArgs.hubSetToken(['hf_abc'], 'hubSetToken')).toEqual(['hf_abc']);
    expect(() => invokeArgs.hubSetToken(['hf abc'], 'hubSetToken')).toThrow(/printable characters, no spaces/);
    expect(() => invokeArgs.hubSetToken([''], 'hubSetToken')).toThrow(/non-empty/);
    expect(() => invokeArgs.hubLookup(['x'.repeat(2049)], 'hubLookup')).toThrow(/longer than 2048/);
    const adapter = { vendor: 'nvidia', architecture: 'hopper', device: 'H200', description: '', limits: { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32 } };
    expect(invokeArgs.hubPlan(['o/n', 'main', 'safetensors', adapter], 'hubPlan')).toEqual(['o/n', 'main', 'safetensors', adapter]);
    expect(invokeArgs.hubPlan(['o/n', 'main', 'safetensors', null], 'hubPlan')[3]).toBeNull();
    expect(() => invokeArgs.hubPlan(['o/n', 'main', 'x', { ...adapter, features: [] }], 'hubPlan')).toThrow('hubPlan[3].features: unexpected key');
    expect(() => invokeArgs.hubPlan(['o/n', 'main', 'x', { ...adapter, limits: { maxStorageBufferBindingSize: -1, maxBufferSize: 1 } }], 'hubPlan')).toThrow(/must be ≥ 0/);
  });

  it('object validators reject unknown keys and report the path', () => {
    const check = v.object({ a: v.number({ integer: true, min: 0 }), b: v.optional(v.string()) });
    expect(check({ a: 3 }, 'x')).toEqual({ a: 3, b: undefined });
    expect(() => check({ a: 3, c: 1 }, 'x')).toThrow('x.c: unexpected key');
    expect(() => check({ a: -1 }, 'x')).toThrow('x.a: must be ≥ 0');
    expect(() => check({ a: Number.NaN }, 'x')).toThrow('x.a: expected a finite number');
  });
});

describe('main IPC handlers', () => {
  it('runs the handler for a trusted caller with validated arguments', async () => {
    const listener = makeInvokeListener('removeModel', handlers, trusted);
    expect(await listener(fakeEvent('app://studio/index.html'), 'user:1')).toEqual({
      ok: true,
      value: [expect.objectContaining({ id: 'user:1', name: 'by 7' })],
    });
  });

  it('refuses calls from other origins and from subframes', async () => {
    const listener = makeInvokeListener('listModels', handlers, trusted);
    for (const event of [fakeEvent('https://evil.example/'), fakeEvent('file:///tmp/x.html'), fakeEvent('app://studio/', { subframe: true })]) {
      expect(await listener(event)).toEqual({ ok: false, error: { code: 'forbidden', message: 'listModels: call from an untrusted frame refused' } });
    }
  });

  it('refuses wrongly typed arguments before the handler runs', async () => {
    const listener = makeInvokeListener('removeModel', handlers, trusted);
    const reply = await listener(fakeEvent('app://studio/index.html'), 42);
    expect(reply).toEqual({ ok: false, error: { code: 'invalid-arguments', message: 'removeModel[0]: expected a string, got number' } });
  });

  it('returns handler failures as errors with their message', async () => {
    const listener = makeInvokeListener('removeModel', handlers, trusted);
    expect(await listener(fakeEvent('app://studio/'), 'boom')).toEqual({ ok: false, error: { code: 'failed', message: 'removal failed' } });
  });
});
