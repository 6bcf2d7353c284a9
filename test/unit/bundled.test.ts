import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { noTokenizerWarning } from '../../app/arch/inspect';
import { architectureOf, bundledModelEntry, bundledWarnings, ModelFileError, pageIndex, parseJsonFile, scrubFolder } from '../../app/library/bundled';
import { scanBundledModels } from '../../app/node/bundled';

const root = path.resolve(import.meta.dirname, '../..');

describe('bundled model entries', () => {
  it('names the file when JSON is garbage or not an object', () => {
    expect(() => parseJsonFile('m/studio.json', '{"a": ')).toThrow(/^m\/studio\.json: not valid JSON/);
    expect(() => parseJsonFile('m/config.json', '[1]')).toThrow('m/config.json: expected a JSON object');
    expect(() => parseJsonFile('m/config.json', '[1]')).toThrow(ModelFileError);
  });

  it('tells Mamba from Mamba-2 by model_type or architectures', () => {
    expect(architectureOf({ model_type: 'mamba' })).toBe('mamba');
    expect(architectureOf({ model_type: 'mamba2' })).toBe('mamba2');
    expect(architectureOf({ architectures: ['Mamba2ForCausalLM'] })).toBe('mamba2');
    expect(architectureOf({ architectures: ['MambaForCausalLM'] })).toBe('mamba');
    expect(architectureOf({ model_type: 'llama' })).toBe('unknown');
  });

  it('builds an entry from the folder listing, studio.json and config.json', () => {
    const entry = bundledModelEntry(
      {
        name: 'tiny',
        files: [
          { name: 'studio.json', size: 100 },
          { name: 'model.safetensors', size: 1000 },
          { name: 'config.json', size: 50 },
        ],
        studio: { display_name: 'Tiny demo', description: 'A tiny model' },
        config: { model_type: 'mamba' },
      },
      'bundled/tiny',
    );
    expect(entry).toEqual({
      id: 'bundled:tiny',
      name: 'Tiny demo',
      source: 'bundled',
      format: 'safetensors',
      architecture: 'mamba',
      files: ['config.json', 'model.safetensors', 'studio.json'],
      baseUrl: 'bundled/tiny',
      sizeBytes: 1150,
      description: 'A tiny model',
    });
  });

  it('refuses a folder without weights, naming it', () => {
    expect(() => bundledModelEntry({ name: 'empty', files: [{ name: 'config.json', size: 2 }], studio: {}, config: {} }, 'x')).toThrow(
      'empty/: no .safetensors, .gguf or .bin weights file',
    );
  });

  it('a model whose studio.json labels its ids has no "no tokenizer" warning; others keep it (issue 15, defect 3)', () => {
    const warning = noTokenizerWarning('selective-copy');
    const other = 'selective-copy/model.safetensors: an unexpected tensor';
    expect(bundledWarnings([warning, other], 'selective-copy', { tokenizer: { labels: ['·', 'A'] } })).toEqual([other]);
    expect(bundledWarnings([warning, other], 'selective-copy', {})).toEqual([warning, other]);
    expect(bundledWarnings([warning], 'selective-copy', { tokenizer: { labels: [1, 2] } })).toEqual([warning]);
  });

  it('the index a page gets names no folder of the serving disk (issue 15, defect 3)', () => {
    const dir = '/home/build/studio/resources/models';
    const scan = {
      models: [{ ...bundledModelEntry({ name: 'm', files: [{ name: 'model.safetensors', size: 1 }], studio: {}, config: {} }, 'bundled/m'), path: `${dir}/m`, warnings: [`${dir}/m/model.safetensors: odd`] }],
      warnings: [`Bundled model x could not be loaded: ${dir}/x/config.json: not valid JSON`, `The bundled models folder ${dir} is missing.`],
    };
    const page = pageIndex(scan, dir);
    expect(JSON.stringify(page)).not.toContain('/home/build');
    expect(page.models[0]).not.toHaveProperty('path');
    expect(page.models[0]!.warnings).toEqual(['resources/models/m/model.safetensors: odd']);
    expect(page.warnings[0]).toBe('Bundled model x could not be loaded: resources/models/x/config.json: not valid JSON');
    expect(scrubFolder('C:\\b\\models\\m: odd', 'C:\\b\\models\\')).toBe('resources/models\\m: odd');
    expect(scrubFolder('nothing here', '')).toBe('nothing here');
  });

  it('the bundled models: no path in their warnings, and none for the labelled id-only selective-copy', async () => {
    const dir = path.join(root, 'resources/models');
    const { models, warnings } = await scanBundledModels(dir, (name) => `bundled/${name}`);
    expect(warnings).toEqual([]);
    const copy = models.find((m) => m.id === 'bundled:selective-copy');
    expect(copy?.warnings ?? []).toEqual([]);
    const page = pageIndex({ models, warnings }, dir);
    expect(JSON.stringify(page)).not.toContain(root);
  });
});
