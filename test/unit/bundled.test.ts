import { describe, expect, it } from 'vitest';
import { architectureOf, bundledModelEntry, ModelFileError, parseJsonFile } from '../../app/library/bundled';

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
      'empty/: no .safetensors or .gguf weights file',
    );
  });
});
