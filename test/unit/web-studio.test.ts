import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ModelEntry } from '../../app/contract';
import { createWebStudio } from '../../renderer/src/host/web-studio';
import { TINY_PARAMETERS, writeTinyModel } from '../support/tiny-model';

const bundled: ModelEntry = {
  id: 'bundled:a',
  name: 'A',
  source: 'bundled',
  format: 'safetensors',
  architecture: 'mamba',
  files: ['config.json', 'model.safetensors'],
  baseUrl: 'bundled/a',
  sizeBytes: 10,
};

afterEach(() => vi.unstubAllGlobals());

describe('web-mode contract implementation', () => {
  it('lists the bundled models from index.json, then the opened ones, and emits changes', async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ models: [bundled] })));
    vi.stubGlobal('fetch', fetchMock);
    const studio = createWebStudio();
    expect(await studio.listModels()).toEqual([bundled]);
    const seen: ModelEntry[][] = [];
    studio.on('modelsChanged', (models) => seen.push(models));
    const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'web-studio-')));
    const files = ['config.json', 'model.safetensors'].map((name) => new File([readFileSync(path.join(dir, name))], name));
    const entry = await studio.openFiles(files);
    expect(entry).toMatchObject({ source: 'user', architecture: 'mamba', format: 'safetensors', parameters: TINY_PARAMETERS });
    expect(entry.sizeBytes).toBe(files[0]!.size + files[1]!.size);
    expect(seen).toEqual([[bundled, entry]]);
    expect(studio.filesOf(entry.id)?.map((f) => f.name)).toEqual(['config.json', 'model.safetensors']);
    expect(await studio.removeModel(entry.id)).toEqual([bundled]);
    expect(fetchMock).toHaveBeenCalledTimes(1); // the index is fetched once
  });

  it('explains files that are no model, and a broken config', async () => {
    vi.stubGlobal('fetch', async () => new Response('{"models": []}'));
    const studio = createWebStudio();
    await expect(studio.openFiles([new File(['x'], 'notes.txt')])).rejects.toThrow('notes.txt: no model here');
    await expect(studio.openFiles([new File(['{oops'], 'config.json'), new File(['x'], 'm.safetensors')])).rejects.toThrow(
      /^config\.json: not valid JSON/,
    );
    await expect(studio.openModelPaths(['/x'])).rejects.toThrow(/desktop app/);
    await expect(studio.removeModel('bundled:a')).rejects.toThrow(/bundled models cannot be removed/);
  });

  it('reports an unreachable bundled index with its URL', async () => {
    vi.stubGlobal('fetch', async () => new Response('nope', { status: 404 }));
    await expect(createWebStudio().listModels()).rejects.toThrow('bundled/index.json: HTTP 404');
  });
});
