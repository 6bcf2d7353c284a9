import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fsp, readFileSync, writeFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { canonicalConfig } from '../../app/arch/registry';
import { inspectModel, inspectSafetensorsModel } from '../../app/arch/inspect';
import { expectedTensors } from '../../app/arch/tensors';
import { openFileSource } from '../../app/node/file-source';
import { folderModelFiles } from '../../app/node/folder';
import { writeSafetensors, type TestTensor } from '../support/safetensors-writer';
import { TINY_CONFIG, TINY_PARAMETERS, writeTinyModel } from '../support/tiny-model';

const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'dist/cli/cli.js');

describe('model inspection', () => {
  it('reads a sharded checkpoint through model.safetensors.index.json', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sharded-'));
    const specs = expectedTensors(canonicalConfig('c', TINY_CONFIG), 'backbone.embeddings.weight').filter((s) => !s.optional);
    const shards: Record<string, TestTensor>[] = [{}, {}];
    const weightMap: Record<string, string> = {};
    specs.forEach((s, i) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      shards[i % 2]![s.name] = { dtype: 'F32', shape: s.shape, data: new Float32Array(n).fill(i) };
      weightMap[s.name] = `model-0000${(i % 2) + 1}-of-00002.safetensors`;
    });
    shards.forEach((t, i) => writeFileSync(path.join(dir, `model-0000${i + 1}-of-00002.safetensors`), writeSafetensors(t)));
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(TINY_CONFIG));
    const files = await folderModelFiles(dir);
    const inspection = await inspectSafetensorsModel(files);
    await files.close();
    expect(inspection.weightFiles).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(inspection.parameters).toBe(TINY_PARAMETERS);
    expect(inspection.tensors.get('backbone.norm_f.weight')?.file).toMatch(/model-0000[12]-of-00002\.safetensors/);

    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { ...weightMap, x: 'model-00003-of-00002.safetensors' } }));
    const again = await folderModelFiles(dir);
    await expect(inspectSafetensorsModel(again)).rejects.toThrow(/model\.safetensors\.index\.json: names shard\(s\) that are not in the folder: model-00003-of-00002\.safetensors/);
    await again.close();
  });

  it('opens pytorch_model.bin as a PyTorch checkpoint (refused when it is not one); .pt/.pth files are refused with a way out', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bin-'));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(TINY_CONFIG));
    writeFileSync(path.join(dir, 'pytorch_model.bin'), 'not a zip archive');
    const files = await folderModelFiles(dir);
    await expect(inspectModel(files)).rejects.toThrow(/pytorch_model\.bin: is not a PyTorch checkpoint: no zip archive/);
    const other = mkdtempSync(path.join(tmpdir(), 'pt-'));
    writeFileSync(path.join(other, 'config.json'), JSON.stringify(TINY_CONFIG));
    writeFileSync(path.join(other, 'model.pt'), 'x');
    await expect(inspectModel(await folderModelFiles(other))).rejects.toThrow(/PyTorch file \(model\.pt\) the studio does not open.*convert it to safetensors/);
  });

  it('reports permission denied by path', async () => {
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    // A regular file (openFileSource stats before opening, to refuse pipes and devices) that cannot be opened.
    const stat = vi.spyOn(fsp, 'stat').mockResolvedValueOnce({ isFile: () => true } as Stats);
    const spy = vi.spyOn(fsp, 'open').mockRejectedValueOnce(denied);
    await expect(openFileSource('/models/locked/model.safetensors')).rejects.toThrow('/models/locked/model.safetensors: cannot be opened (permission denied)');
    spy.mockRestore();
    stat.mockRestore();
  });
});

describe('npm run cli -- info', () => {
  it('prints one JSON object describing the model', (test) => {
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first; run npm run build:cli)');
    const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'cli-')));
    const info = JSON.parse(execFileSync(process.execPath, [cli, 'info', '--model', dir], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(info).toMatchObject({ architecture: 'mamba', parameters: TINY_PARAMETERS, warnings: [expect.stringMatching(/no tokenizer\.json/)] });
    expect(info.config).toMatchObject({ dModel: 8, nLayer: 2, vocabSize: 16 });
    expect((info.tensors as Record<string, unknown>)['backbone.layers.1.mixer.A_log']).toEqual({ shape: [16, 4], dtype: 'F32' });
  });

  it('exits 2 with one line naming the file for a broken model', (test) => {
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first; run npm run build:cli)');
    const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'cli-')));
    const file = path.join(dir, 'model.safetensors');
    writeFileSync(file, readFileSync(file).subarray(0, 100));
    const run = spawnSync(process.execPath, [cli, 'info', '--model', dir], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`error: ${file}: header length ${readFileSync(file).subarray(0, 8).readBigUInt64LE()} runs past the end of the file (100 bytes): the file is truncated or not safetensors\n`);
  });
});
