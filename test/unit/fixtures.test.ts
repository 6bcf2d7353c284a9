/**
 * Every golden fixture and bundled demo model parses, and the shapes in its config.json match its
 * tensors (full numeric checks belong to the engine's golden tests). The files were made by
 * scripts/ with transformers on a GPU machine; this checks them with the studio's own readers.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigJson } from '../../app/formats/config';
import { canonicalConfig } from '../../app/arch/registry';
import type { MambaConfig } from '../../app/model/config';
import { inspectSafetensorsModel } from '../../app/arch/inspect';
import { readSafetensorsHeader, readTensorBytes, toIntegers } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { folderModelFiles } from '../../app/node/folder';

const root = path.resolve(import.meta.dirname, '../..');
const goldenDir = path.join(root, 'test/fixtures/golden');
const modelsDir = path.join(root, 'resources/models');
const folders = (dir: string) =>
  existsSync(dir) ? readdirSync(dir).filter((n) => statSync(path.join(dir, n)).isDirectory()).sort() : [];

const goldenCases = folders(goldenDir);
const bundled = folders(modelsDir);

function configOf(dir: string): MambaConfig {
  const file = path.join(dir, 'config.json');
  return canonicalConfig(file, parseConfigJson(file, readFileSync(file, 'utf8')));
}

async function inspect(dir: string) {
  const files = await folderModelFiles(dir);
  try {
    return await inspectSafetensorsModel(files);
  } finally {
    await files.close();
  }
}

describe('golden fixtures', () => {
  it('has the eight cases the engine issues rely on, within 8 MB together', () => {
    expect(goldenCases).toEqual(['falcon-mamba-odd', 'falcon-mamba-tiny', 'mamba1-bias-untied', 'mamba1-odd', 'mamba1-tied', 'mamba2-8groups', 'mamba2-groups', 'mamba2-one-group']);
    let total = 0;
    const walk = (dir: string) => {
      for (const n of readdirSync(dir)) {
        const p = path.join(dir, n);
        if (statSync(p).isDirectory()) walk(p);
        else total += statSync(p).size;
      }
    };
    walk(goldenDir);
    expect(total).toBeLessThan(8 * 1024 * 1024);
  });

  it.each(goldenCases)('%s: config and weights agree, and golden.safetensors holds every documented tap', async (name) => {
    const dir = path.join(goldenDir, name);
    const config = configOf(dir);
    const inspection = await inspect(dir);
    expect(inspection.architecture).toBe(config.architecture);
    expect(inspection.tiedHead).toBe(config.tieEmbeddings);

    const bytes = readFileSync(path.join(dir, 'golden.safetensors'));
    const source = memorySource('golden.safetensors', new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const golden = await readSafetensorsHeader(source);
    expect(golden.metadata.format).toBe('mamba-studio/golden@1');
    expect(golden.metadata.case).toBe(name);
    const shape = (tensor: string) => golden.tensors.get(tensor)?.shape;
    const ids = golden.tensors.get('input_ids');
    expect(ids?.dtype).toBe('I32');
    const T = ids!.shape[0]!;
    expect(T).toBeGreaterThanOrEqual(30);
    expect(T).toBeLessThanOrEqual(300);
    expect(toIntegers(ids!, await readTensorBytes(source, ids!)).every((id) => id >= 0 && id < config.vocabSize)).toBe(true);
    const { vocabSize: V, dModel: d, dInner: di, dState: N, nLayer: L } = config;
    expect(shape('logits')).toEqual([T, V]);
    expect(shape('embeddings')).toEqual([T, d]);
    for (let k = 0; k <= L; k++) expect(shape(`hidden_states.${k}`), `hidden_states.${k}`).toEqual([T, d]);
    expect(shape(`hidden_states.${L + 1}`)).toBeUndefined();
    const mamba2 = config.architecture === 'mamba2';
    for (let i = 0; i < L; i++) {
      expect(shape(`layers.${i}.x`)).toEqual([T, di]);
      expect(shape(`layers.${i}.delta`)).toEqual(mamba2 ? [T, config.nHeads] : [T, di]);
      expect(shape(`layers.${i}.B`)).toEqual(mamba2 ? [T, config.nGroups * N] : [T, N]);
      expect(shape(`layers.${i}.C`)).toEqual(mamba2 ? [T, config.nGroups * N] : [T, N]);
      expect(shape(`layers.${i}.out_proj_in`)).toEqual([T, di]);
      if (mamba2) expect(shape(`layers.${i}.y`)).toEqual([T, di]);
    }
    const generated = golden.tensors.get('generated_ids');
    expect(generated?.dtype).toBe('I32');
    const S = generated!.shape[0]!;
    expect(S).toBeGreaterThan(0);
    expect(shape('generated_logits')).toEqual([S, V]);
    expect(shape('generate.prompt_ids')).toEqual([T]);
  });

  it('tokenizer.json has ids for the tricky strings', () => {
    const file = path.join(goldenDir, 'tokenizer.json');
    const golden = JSON.parse(readFileSync(file, 'utf8')) as { cases: { name: string; text: string; ids: number[] }[] };
    expect(golden.cases.length).toBeGreaterThanOrEqual(35);
    for (const c of golden.cases) {
      expect(typeof c.text, c.name).toBe('string');
      expect(c.ids.every((id) => Number.isInteger(id) && id >= 0 && id < 50280), c.name).toBe(true);
    }
    expect(golden.cases.some((c) => c.text.includes('<|endoftext|>'))).toBe(true);
  });
});

describe('bundled demo models', () => {
  it('ships shakespeare-byte and selective-copy', () => {
    expect(bundled).toEqual(['selective-copy', 'shakespeare-byte']);
  });

  it.each(bundled)('%s: config and weights agree, studio.json records how it was made and how well it does', async (name) => {
    const dir = path.join(modelsDir, name);
    const inspection = await inspect(dir);
    expect(inspection.architecture).toBe('mamba');
    expect(inspection.weightBytes).toBeLessThanOrEqual(8 * 1024 * 1024);
    const studio = JSON.parse(readFileSync(path.join(dir, 'studio.json'), 'utf8')) as Record<string, unknown>;
    expect(typeof studio.display_name).toBe('string');
    expect(JSON.stringify(studio)).toMatch(/scripts\/train\//); // the command that re-makes it
  });
});
