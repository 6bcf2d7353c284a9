import {
  existsSync, linkSync, mkdirSync, mkdtempSync, promises as fsPromises, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { fitRecord, Library, LIBRARY_LIMITS, LibraryIndexFile, type LibraryRecord } from '../../main/library';
import { MAX_MODEL_FILES } from '../../main/model-files';
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

  it('starts anew when index and backup are both unusable, keeping both aside and deleting nothing', async () => {
    const { userData, bundled, model, index } = setup();
    const library = new Library(bundled, userData);
    await library.open(model);
    await library.open(model);
    writeFileSync(index, '[]');
    writeFileSync(`${index}.bak`, 'garbage');
    const fresh = new Library(bundled, userData);
    expect((await fresh.list()).filter((e) => e.source === 'user')).toEqual([]);
    const notice = fresh.notices.join('\n');
    expect(notice).toMatch(
      /library\.json is not a library index \(expected a JSON object\), and no usable backup exists \(the index is kept at .*library\.json\.corrupt-[^;]+; its backup is not valid JSON and is kept at .*library\.json\.bak\.corrupt-[^)]+\); a new, empty library started\. Nothing was deleted\./,
    );
    const aside = readdirSync(userData).filter((f) => f.includes('.corrupt-'));
    expect(aside.map((f) => readFileSync(path.join(userData, f), 'utf8')).sort()).toEqual(['[]', 'garbage']);
    expect(existsSync(index)).toBe(false);
    expect(existsSync(`${index}.bak`)).toBe(false);
    // The new library works and is written again.
    await fresh.open(model);
    expect((await new Library(bundled, userData).list()).filter((e) => e.source === 'user')).toHaveLength(1);
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

/** Reproducers of issue 14, item 4: whatever the library writes, the next start loads. */
describe('the library index cannot wipe itself', () => {
  const userModels = async (library: Library) => (await library.list()).filter((e) => e.source === 'user');

  it("records a model with a tensor named 'x'×5000: its warning is shortened, and the next start loads it", async () => {
    const { userData, bundled, root } = setup();
    const model = writeTinyModel(path.join(root, 'my-model-x'), TINY_CONFIG, { ['x'.repeat(5000)]: { dtype: 'F32', shape: [1], data: [0] } });
    const entry = await new Library(bundled, userData).open(model);
    const warning = entry.warnings?.find((w) => w.includes('unexpected tensor')) ?? '';
    expect(warning).toMatch(/model\.safetensors: unexpected tensor x{100,}…$/);
    expect(warning.length).toBe(LIBRARY_LIMITS.warning);
    const again = new Library(bundled, userData);
    expect((await userModels(again)).map((e) => e.name)).toEqual(['my-model-x']);
    expect(again.notices).toEqual([]);
  });

  it('records only the files the model consists of, in a folder of more than 100,000 files', async () => {
    const { userData, bundled, model } = setup();
    writeFileSync(path.join(model, 'notes.txt'), 'private');
    writeFileSync(path.join(model, 'tokenizer.json'), '{}');
    writeFileSync(path.join(model, 'other.gguf.part'), '');
    // 100,001 more files in the listing (stubbed: making them would take seconds). None is stat'ed or opened.
    const real = fsPromises.readdir.bind(fsPromises);
    const junk = Array.from({ length: 100_001 }, (_, i) => ({ name: `note-${i}.txt`, isDirectory: () => false, isFile: () => true }));
    const spy = vi.spyOn(fsPromises, 'readdir').mockImplementation((async (dir: string, options?: unknown) => {
      const entries = (await real(dir, options as never)) as unknown[];
      return dir === model ? [...entries, ...junk] : entries;
    }) as never);
    try {
      const entry = await new Library(bundled, userData).open(model);
      expect(entry.files).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
      expect(entry.sizeBytes).toBe(['config.json', 'model.safetensors', 'tokenizer.json'].reduce((s, f) => s + statSync(path.join(model, f)).size, 0));
    } finally {
      spy.mockRestore();
    }
    const again = new Library(bundled, userData);
    expect((await userModels(again)).map((e) => e.files)).toEqual([['config.json', 'model.safetensors', 'tokenizer.json']]);
    expect(again.notices).toEqual([]);
  });

  it('refuses a folder holding more weights and config files than one model may have, leaving the index alone', async () => {
    const { userData, bundled, model, index } = setup();
    const library = new Library(bundled, userData);
    await library.open(model);
    const before = readFileSync(index, 'utf8');
    const many = Array.from({ length: MAX_MODEL_FILES }, (_, i) => ({ name: `shard-${i}.safetensors`, isDirectory: () => false, isFile: () => true }));
    const real = fsPromises.readdir.bind(fsPromises);
    const spy = vi.spyOn(fsPromises, 'readdir').mockImplementation((async (dir: string, options?: unknown) => {
      const entries = (await real(dir, options as never)) as unknown[];
      return dir === model ? [...entries, ...many] : entries;
    }) as never);
    try {
      await expect(library.open(model)).rejects.toThrow(`my-model: holds ${MAX_MODEL_FILES + 2} weights and config files; one model may have at most ${MAX_MODEL_FILES}`);
    } finally {
      spy.mockRestore();
    }
    expect(readFileSync(index, 'utf8')).toBe(before);
  });

  it('survives 510 concurrent operations: every one succeeds and the index holds the last state', async () => {
    const { userData, bundled, model, root, index } = setup();
    const models = [model, writeTinyModel(path.join(root, 'b')), writeTinyModel(path.join(root, 'c'))];
    const library = new Library(bundled, userData);
    for (const m of models) await library.open(m); // inspected once; the 510 below use the cached validation
    const results = await Promise.allSettled(Array.from({ length: 510 }, (_, i) => library.open(models[i % 3] as string)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(readdirSync(userData).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const again = new Library(bundled, userData);
    expect((await userModels(again)).map((e) => e.name).sort()).toEqual(['b', 'c', 'my-model']);
    expect(again.notices).toEqual([]);
    // Direct concurrent saves, each a different state: all succeed, in order.
    const file = new LibraryIndexFile(userData);
    const { records } = await file.load();
    const saves = await Promise.allSettled(Array.from({ length: 510 }, (_, i) => file.save(records.slice(0, i % 4))));
    expect(saves.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(JSON.parse(readFileSync(index, 'utf8')).models).toHaveLength(509 % 4);
  });

  it('removes the temp files of killed saves at start, and keeps the index', async () => {
    const { userData, bundled, model, index } = setup();
    await new Library(bundled, userData).open(model);
    const before = readFileSync(index, 'utf8');
    writeFileSync(`${index}.tmp-4242-1700000000000`, '{"version": 1, "mod'); // the old naming
    writeFileSync(`${index}.tmp-4242-7-a1b2c3d4e5f6`, '');
    const again = new Library(bundled, userData);
    expect((await userModels(again)).map((e) => e.name)).toEqual(['my-model']);
    expect(again.notices).toEqual([]);
    expect(readdirSync(userData).sort()).toEqual(['library.json']);
    expect(readFileSync(index, 'utf8')).toBe(before);
  });

  it('keeps the readable entries of a partly bad index, says which were left out, and keeps the file as it was', async () => {
    const { userData, bundled, model, index } = setup();
    await new Library(bundled, userData).open(model);
    const text = readFileSync(index, 'utf8');
    const good = JSON.parse(text).models[0];
    const bad = { ...good, entry: { ...good.entry, id: 'user:bad', name: 'n'.repeat(5000) } };
    writeFileSync(index, JSON.stringify({ version: 2, models: [good, bad, 42] }));
    const again = new Library(bundled, userData);
    expect((await userModels(again)).map((e) => e.name)).toEqual(['my-model']);
    expect(again.notices.join('\n')).toMatch(
      /^2 entries of the library index could not be read and were left out \(models\[1\]\.entry\.name: string longer than 1024 characters; models\[2\]: expected an object, got number\); re-open those models to add them again\. The index as it was is kept at .*library\.json\.partial-/,
    );
    const kept = readdirSync(userData).find((f) => f.startsWith('library.json.partial-')) as string;
    expect(JSON.parse(readFileSync(path.join(userData, kept), 'utf8')).models).toHaveLength(3);
  });

  it('reads a version-1 index that recorded every file of the folder as the model files only', async () => {
    const { userData, bundled, model, index } = setup();
    await new Library(bundled, userData).open(model);
    const v2 = JSON.parse(readFileSync(index, 'utf8'));
    const entry = { ...v2.models[0].entry, files: ['config.json', 'model.safetensors', 'notes.txt', ...Array.from({ length: 5000 }, (_, i) => `f${i}.png`)] };
    writeFileSync(index, JSON.stringify({ version: 1, models: [{ entry, validatedKey: 'x'.repeat(200_000) }] }));
    const again = new Library(bundled, userData);
    expect((await userModels(again)).map((e) => e.files)).toEqual([['config.json', 'model.safetensors']]);
    expect(again.notices).toEqual([]);
  });

  it('never writes what it would not load: a record over the limits is refused and the index left as it was', async () => {
    const { userData, bundled, model, index } = setup();
    await new Library(bundled, userData).open(model);
    const before = readFileSync(index, 'utf8');
    const file = new LibraryIndexFile(userData);
    const { records } = await file.load();
    const record = records[0] as LibraryRecord;
    const huge = { ...record, entry: { ...record.entry, warnings: ['w'.repeat(LIBRARY_LIMITS.warning + 1)] } };
    await expect(file.save([huge])).rejects.toThrow(
      'The library index was not saved: it would not load again (models[0].entry.warnings[0]: string longer than 2000 characters)',
    );
    expect(readFileSync(index, 'utf8')).toBe(before);
    // fitRecord trims the same record into one that loads.
    const fitted = fitRecord(huge);
    expect(fitted.entry.warnings?.[0]).toHaveLength(LIBRARY_LIMITS.warning);
    await file.save([fitted]);
    expect((await new LibraryIndexFile(userData).load()).records).toEqual([fitted]);
    // As do many warnings, and a config nested too deep to write safely.
    const deep: Record<string, unknown> = {};
    let at = deep;
    for (let i = 0; i < 10_000; i++) at = at.x = {} as Record<string, unknown>;
    const many = fitRecord({ ...record, entry: { ...record.entry, config: deep, warnings: Array.from({ length: 600_000 }, (_, i) => `w${i}`) } });
    expect(many.entry.warnings).toHaveLength(LIBRARY_LIMITS.warnings);
    expect(many.entry.warnings?.at(-1)).toBe(`… and ${600_000 - LIBRARY_LIMITS.warnings + 1} more warning(s)`);
    expect(many.entry.config).toBeUndefined();
  });

  it(`keeps the first ${LIBRARY_LIMITS.models} models of an index holding more, and refuses to add beyond that`, async () => {
    const { userData, bundled, model } = setup();
    mkdirSync(userData);
    const record = (i: number) => ({
      entry: { id: `user:${i.toString(16).padStart(16, '0')}`, name: `m${i}`, source: 'user', format: 'gguf', architecture: 'mamba', files: [], baseUrl: '', sizeBytes: 0, path: `/m${i}` },
      validatedKey: '',
    });
    writeFileSync(path.join(userData, 'library.json'), JSON.stringify({ version: 2, models: Array.from({ length: LIBRARY_LIMITS.models + 1 }, (_, i) => record(i)) }));
    const library = new Library(bundled, userData);
    expect(await userModels(library)).toHaveLength(LIBRARY_LIMITS.models);
    expect(library.notices[0]).toMatch(/^1 entry of the library index could not be read and was left out \(1 model\(s\) beyond the first 10000\)/);
    await expect(library.open(model)).rejects.toThrow(`The library holds 10000 models, the most it can; remove some to add ${model}`);
    await library.remove('user:0000000000000000');
    await library.open(model);
    expect(await userModels(new Library(bundled, userData))).toHaveLength(LIBRARY_LIMITS.models);
  });

  it('leaves an index written by a newer version alone, and works read-only', async () => {
    const { userData, bundled, model, index } = setup();
    mkdirSync(userData);
    writeFileSync(index, JSON.stringify({ version: 99, models: [], future: true }));
    const library = new Library(bundled, userData);
    expect(await userModels(library)).toEqual([]);
    expect(library.notices.join('\n')).toMatch(
      /^The library is read-only this session \(.*library\.json was written by a newer version of Mamba Studio \(index version 99\)\): models opened or removed now are not remembered\.$/,
    );
    const entry = await library.open(model); // usable this session, in memory
    expect((await userModels(library)).map((e) => e.id)).toEqual([entry.id]);
    expect(await library.remove(entry.id)).toBe(true);
    expect(JSON.parse(readFileSync(index, 'utf8'))).toEqual({ version: 99, models: [], future: true });
    expect(readdirSync(userData)).toEqual(['library.json']);
  });

  it('leaves its records unchanged when the index cannot be written', async () => {
    const { userData, bundled, model, root } = setup();
    const library = new Library(bundled, userData);
    await library.open(model);
    const spy = vi.spyOn(fsPromises, 'rename').mockRejectedValue(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
    try {
      await expect(library.open(writeTinyModel(path.join(root, 'second')))).rejects.toThrow('ENOSPC: no space left on device');
    } finally {
      spy.mockRestore();
    }
    expect((await userModels(library)).map((e) => e.name)).toEqual(['my-model']);
    expect(readdirSync(userData).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('restores a missing index from its backup, and keeps a bad backup aside when the index is missing', async () => {
    const { userData, bundled, model, index } = setup();
    await new Library(bundled, userData).open(model);
    renameSync(index, `${index}.bak`);
    const restored = new Library(bundled, userData);
    expect((await userModels(restored)).map((e) => e.name)).toEqual(['my-model']);
    expect(restored.notices.join('\n')).toMatch(/The library index was missing; restored 1 model\(s\) from .*library\.json\.bak\./);
    writeFileSync(`${index}.bak`, '{"version": 2, "models": {}}');
    const fresh = new Library(bundled, userData);
    expect(await userModels(fresh)).toEqual([]);
    expect(fresh.notices.join('\n')).toMatch(
      /The library index was missing and its backup .*library\.json\.bak is not a library index \("models" is not a list\); the backup was moved to .*library\.json\.bak\.corrupt-.* and a new, empty library started\./,
    );
    expect(readdirSync(userData).some((f) => f.startsWith('library.json.bak.corrupt-'))).toBe(true);
  });

  it('refuses a model whose files are links, naming the file', async () => {
    const { userData, bundled, root } = setup();
    const linked = writeTinyModel(path.join(root, 'linked'));
    writeFileSync(path.join(root, 'secret.json'), '{"token": "s3cr3t"}');
    rmSync(path.join(linked, 'config.json'));
    symlinkSync(path.join(root, 'secret.json'), path.join(linked, 'config.json'));
    await expect(new Library(bundled, userData).open(linked)).rejects.toThrow(
      `${path.join(linked, 'config.json')}: is a symbolic link; only regular files inside the model folder are read (copy the file into the folder)`,
    );
    const hard = writeTinyModel(path.join(root, 'hard'));
    linkSync(path.join(hard, 'model.safetensors'), path.join(root, 'elsewhere.safetensors'));
    await expect(new Library(bundled, userData).open(hard)).rejects.toThrow(
      `${path.join(hard, 'model.safetensors')}: has 2 hard links (other names elsewhere); only files of their own are read (copy the file)`,
    );
  });
});
