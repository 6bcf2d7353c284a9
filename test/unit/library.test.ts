import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Library } from '../../main/library';
import { TINY_CONFIG, TINY_PARAMETERS, writeTinyModel } from '../support/tiny-model';

function setup() {
  const root = mkdtempSync(path.join(tmpdir(), 'library-'));
  const userData = path.join(root, 'userData');
  const bundled = path.join(root, 'bundled');
  writeTinyModel(path.join(bundled, 'demo'));
  writeFileSync(path.join(bundled, 'demo', 'studio.json'), JSON.stringify({ display_name: 'Demo' }));
  const model = writeTinyModel(path.join(root, 'my-model'));
  return { root, userData, bundled, model, index: path.join(userData, 'library.json') };
}

describe('model library (main)', () => {
  it('lists bundled models first, remembers opened models across restarts, with config and parameters', async () => {
    const { userData, bundled, model } = setup();
    const library = new Library(bundled, userData);
    const entry = await library.open(model);
    expect(entry).toMatchObject({ source: 'user', architecture: 'mamba', format: 'safetensors', name: 'my-model', path: model });
    expect(entry.parameters).toBe(TINY_PARAMETERS);
    expect(entry.config).toMatchObject({ dModel: 8, nLayer: 2, dInner: 16, dState: 4, dtRank: 1 });
    const again = new Library(bundled, userData);
    const list = await again.list();
    expect(list.map((e) => e.name)).toEqual(['Demo', 'my-model']);
    expect(list[0]?.parameters).toBe(entry.parameters);
    expect(again.notices).toEqual([]);
  });

  it('uses the cached validation while the files are unchanged, and re-validates when they change', async () => {
    const { userData, bundled, model } = setup();
    const library = new Library(bundled, userData);
    await library.open(model);
    writeFileSync(path.join(model, 'config.json'), '{broken'); // same name, new size and mtime
    await expect(library.open(model)).rejects.toThrow(/config\.json: not valid JSON/);
    expect((await library.list()).find((e) => e.source === 'user')?.parameters).toBeGreaterThan(0); // still there, unchanged
  });

  it('recovers a corrupt index from its backup, with a message, and keeps the corrupt file aside', async () => {
    const { userData, bundled, model, index, root } = setup();
    const library = new Library(bundled, userData);
    await library.open(model);
    await library.open(writeTinyModel(path.join(root, 'second')));
    writeFileSync(index, '{"version": 1, "models": [tru');
    const recovered = new Library(bundled, userData);
    expect((await recovered.list()).filter((e) => e.source === 'user').map((e) => e.name)).toEqual(['my-model']);
    expect(recovered.notices.join('\n')).toMatch(/is not valid JSON.*moved to .*library\.json\.corrupt-.*restored from its backup \(1 model/);
    expect(readdirSync(userData).some((f) => f.startsWith('library.json.corrupt-'))).toBe(true);
    expect(JSON.parse(readFileSync(index, 'utf8')).models).toHaveLength(1);
  });

  it('starts anew with a message when index and backup are both unusable', async () => {
    const { userData, bundled, model, index } = setup();
    const library = new Library(bundled, userData);
    await library.open(model);
    await library.open(model);
    writeFileSync(index, '[]');
    writeFileSync(`${index}.bak`, 'garbage');
    const fresh = new Library(bundled, userData);
    expect((await fresh.list()).filter((e) => e.source === 'user')).toEqual([]);
    expect(fresh.notices.join('\n')).toMatch(/no usable backup exists; it was moved to .* a new, empty library started/);
  });

  it('removing a model forgets it but never deletes its files', async () => {
    const { userData, bundled, model } = setup();
    const library = new Library(bundled, userData);
    const entry = await library.open(model);
    expect(await library.remove(entry.id)).toBe(true);
    expect(await library.remove(entry.id)).toBe(false);
    expect(existsSync(path.join(model, 'model.safetensors'))).toBe(true);
    expect((await new Library(bundled, userData).list()).filter((e) => e.source === 'user')).toEqual([]);
  });

  it.each([
    ['a folder with no model', (root: string) => mkdtempSync(path.join(root, 'empty-')), /no model here: no config\.json and no weights/],
    ['a path that does not exist', (root: string) => path.join(root, 'missing'), /missing: not found/],
    [
      'a truncated weights file',
      (root: string) => {
        const dir = writeTinyModel(path.join(root, 'trunc'));
        const file = path.join(dir, 'model.safetensors');
        writeFileSync(file, readFileSync(file).subarray(0, 400));
        return dir;
      },
      /model\.safetensors: .*truncated/,
    ],
    [
      'a config for another architecture',
      (root: string) => {
        const dir = writeTinyModel(path.join(root, 'llama'));
        writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', architectures: ['LlamaForCausalLM'] }));
        return dir;
      },
      /config\.json: describes a Llama model \(LlamaForCausalLM\), not Mamba or Mamba-2/,
    ],
    [
      'a missing tensor',
      (root: string) => {
        const dir = writeTinyModel(path.join(root, 'short'));
        writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...TINY_CONFIG, use_bias: true }));
        return dir;
      },
      /missing tensor backbone\.layers\.0\.mixer\.in_proj\.bias/,
    ],
  ])('refuses %s with a clear error and leaves the library unchanged', async (_what, make, message) => {
    const { userData, bundled, model, root, index } = setup();
    const library = new Library(bundled, userData);
    await library.open(model);
    const before = readFileSync(index, 'utf8');
    await expect(library.open(make(root))).rejects.toThrow(message);
    expect(readFileSync(index, 'utf8')).toBe(before);
    expect((await library.list()).filter((e) => e.source === 'user')).toHaveLength(1);
    rmSync(root, { recursive: true, force: true });
  });
});
