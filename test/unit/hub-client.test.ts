/**
 * Reading what the user pastes (app/hub/repo-ref.ts), the choices a repo's files offer
 * (app/hub/choices.ts), search filtered to what the studio runs and model info (app/hub/client.ts)
 * against the test Hub (test/support/hub-server.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { choiceForFile, ggufQuant, studioChoices } from '../../app/hub/choices';
import { HubClient, hubEndpoint, type HubTreeEntry } from '../../app/hub/client';
import type { HubError } from '../../app/hub/errors';
import type { HubFetch } from '../../app/hub/http';
import { parseHubRef } from '../../app/hub/repo-ref';
import { fixtureBytes, startHubServer, type HubServer } from '../support/hub-server';

describe('parseHubRef', () => {
  it.each([
    ['state-spaces/mamba-130m-hf', { repo: 'state-spaces/mamba-130m-hf', revision: 'main' }],
    ['  tiiuae/falcon-mamba-7b  ', { repo: 'tiiuae/falcon-mamba-7b', revision: 'main' }],
    ['https://huggingface.co/state-spaces/mamba-130m-hf', { repo: 'state-spaces/mamba-130m-hf', revision: 'main' }],
    ['huggingface.co/state-spaces/mamba-130m-hf/', { repo: 'state-spaces/mamba-130m-hf', revision: 'main' }],
    ['https://hf.co/tiiuae/falcon-mamba-7b/tree/v1.0', { repo: 'tiiuae/falcon-mamba-7b', revision: 'v1.0' }],
    ['https://huggingface.co/o/n/tree/refs%2Fpr%2F3/sub', { repo: 'o/n', revision: 'refs/pr/3' }],
    ['https://huggingface.co/o/n-GGUF/blob/main/n-Q4_K_M.gguf', { repo: 'o/n-GGUF', revision: 'main', file: 'n-Q4_K_M.gguf' }],
    ['https://huggingface.co/o/n/resolve/0123abc/sub/dir/model.safetensors?download=true', { repo: 'o/n', revision: '0123abc', file: 'sub/dir/model.safetensors' }],
    ['http://127.0.0.1:9/o/n/resolve/main/config.json', { repo: 'o/n', revision: 'main', file: 'config.json' }],
  ])('%s', (input, expected) => {
    expect(parseHubRef(input, 'http://127.0.0.1:9')).toEqual(expected);
  });

  it.each([
    ['', /Enter a Hub repo id/],
    ['just-a-name', /names no model repo/],
    ['a/b/c', /is not a repo id/],
    ['https://example.com/o/n', /not a Hugging Face Hub URL \(its host is example.com\)/],
    ['https://huggingface.co/datasets/o/n', /is a dataset, not a model repo/],
    ['https://huggingface.co/spaces/o/n', /is a Space/],
    ['o/n..x', /not a valid Hub repo id/],
    ['-o/n', /not a valid Hub repo id/],
    ['https://huggingface.co/o/n/commits/main', /expected …\/o\/n\/tree\/<revision>/],
    ['https://huggingface.co/o/n/resolve/main/a%2F..%2Fsecret', /must not contain \. or \.\./],
  ])('refuses %j', (input, message) => {
    expect(() => parseHubRef(input)).toThrow(message);
    try {
      parseHubRef(input);
    } catch (error) {
      expect((error as HubError).kind).toBe('bad-input');
    }
  });

  it('HF_ENDPOINT names the endpoint, without a trailing slash; a non-URL is refused', () => {
    expect(hubEndpoint({})).toBe('https://huggingface.co');
    expect(hubEndpoint({ HF_ENDPOINT: 'https://hf-mirror.example/' })).toBe('https://hf-mirror.example');
    expect(() => hubEndpoint({ HF_ENDPOINT: 'ftp://x' })).toThrow(/not an http\(s\) URL/);
  });
});

const entry = (path: string, size: number, lfs = true): HubTreeEntry => ({ path, size, oid: 'f'.repeat(40), ...(lfs ? { sha256: 'e'.repeat(64) } : {}) });

describe('studioChoices', () => {
  it('offers the sharded safetensors with their side files, the .bin, and each GGUF quant on its own', () => {
    const tree = [
      entry('config.json', 900, false),
      entry('model-00001-of-00002.safetensors', 5000),
      entry('model-00002-of-00002.safetensors', 3000),
      entry('model.safetensors.index.json', 200, false),
      entry('tokenizer.json', 2000, false),
      entry('generation_config.json', 100, false),
      entry('pytorch_model.bin', 8100),
      entry('training_args.bin', 50),
      entry('README.md', 10, false),
      entry('onnx/model.safetensors', 7000),
      entry('m-Q8_0.gguf', 4000),
      entry('m-Q4_K_M.gguf', 2000),
      entry('big/m-F16-00001-of-00002.gguf', 9000),
      entry('big/m-F16-00002-of-00002.gguf', 7000),
    ];
    const choices = studioChoices(tree);
    expect(choices.map((c) => [c.id, c.label, c.bytes, c.weightBytes])).toEqual([
      ['safetensors', 'safetensors (2 shards)', 900 + 5000 + 3000 + 200 + 2000 + 100, 8000],
      ['pytorch', 'PyTorch .bin', 900 + 2000 + 100 + 8100, 8100],
      ['gguf:m-Q4_K_M.gguf', 'GGUF Q4_K_M (m-Q4_K_M.gguf)', 2000, 2000],
      ['gguf:m-Q8_0.gguf', 'GGUF Q8_0 (m-Q8_0.gguf)', 4000, 4000],
      ['gguf:big/m-F16-00001-of-00002.gguf', 'GGUF F16 (2 parts)', 16000, 16000],
    ]);
    expect(choices[0]?.files.map((f) => f.path)).toEqual([
      'config.json', 'generation_config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'tokenizer.json',
    ]);
    expect(choiceForFile(choices, 'm-Q8_0.gguf')?.id).toBe('gguf:m-Q8_0.gguf');
    expect(choiceForFile(choices, 'config.json')?.id).toBe('safetensors');
    expect(choiceForFile(choices, 'README.md')).toBeNull();
  });

  it("mistral's consolidated form is a choice of its own (params.json, not config.json)", () => {
    const choices = studioChoices([entry('params.json', 300, false), entry('consolidated.safetensors', 9000), entry('tokenizer.json', 10, false)]);
    expect(choices.map((c) => [c.id, c.files.map((f) => f.path)])).toEqual([['mistral', ['consolidated.safetensors', 'params.json', 'tokenizer.json']]]);
  });

  it('no config, no choice; an incomplete split GGUF is left out', () => {
    expect(studioChoices([entry('model.safetensors', 10), entry('x-00001-of-00002.gguf', 5)])).toEqual([]);
  });

  it.each([
    ['mamba-130m.Q4_K_M.gguf', 'Q4_K_M'],
    ['falcon-mamba-7b-instruct-BF16.gguf', 'BF16'],
    ['model-IQ3_XXS.gguf', 'IQ3_XXS'],
    ['model.gguf', null],
  ])('quant of %s', (name, quant) => {
    expect(ggufQuant(name)).toBe(quant);
  });
});

describe('search and model info on the test Hub', () => {
  let server: HubServer;
  const commit = 'c'.repeat(40);
  beforeAll(async () => {
    const files = { 'config.json': new TextEncoder().encode('{}'), 'model.safetensors': fixtureBytes(100) };
    server = await startHubServer([
      { repo: 'state-spaces/mamba-130m-hf', commit, files, modelType: 'mamba', tags: ['transformers', 'mamba'], license: 'apache-2.0' },
      { repo: 'someone/mamba2-tiny', commit, files, modelType: 'mamba2', tags: ['mamba2'] },
      { repo: 'tiiuae/falcon-mamba-7b', commit, files, modelType: 'falcon_mamba', gated: true, license: 'other' },
      { repo: 'someone/mamba-130m-GGUF', commit, files: { 'm.Q4_0.gguf': fixtureBytes(10) }, tags: ['gguf'] },
      { repo: 'someone/mamba-llama-distill', commit, files, modelType: 'llama', tags: ['llama', 'mamba'] },
      { repo: 'someone/jamba-mamba-hybrid', commit, files, modelType: 'jamba', tags: ['jamba'] },
      { repo: 'someone/other-GGUF', commit, files: { 'o.gguf': fixtureBytes(10) }, tags: ['gguf'] },
    ]);
  });
  afterAll(() => server.close());
  const client = () => new HubClient({ fetch: fetch as unknown as HubFetch, endpoint: server.endpoint });

  it('keeps only hits the studio runs: registered model types, and GGUF repos of Mamba models', async () => {
    const hits = await client().search('mamba');
    expect(hits.map((h) => [h.repo, h.kind, h.gated])).toEqual([
      ['state-spaces/mamba-130m-hf', 'mamba', false],
      ['someone/mamba2-tiny', 'mamba2', false],
      ['tiiuae/falcon-mamba-7b', 'falcon_mamba', 'manual'],
      ['someone/mamba-130m-GGUF', 'gguf', false],
    ]);
    const query = server.hubRequests.at(-1)?.url ?? '';
    expect(query).toMatch(/^\/api\/models\?search=mamba&limit=100&/);
  });

  it("model info: the commit, license (card, else tag) and gated state", async () => {
    const info = await client().modelInfo('state-spaces/mamba-130m-hf');
    expect(info).toMatchObject({ repo: 'state-spaces/mamba-130m-hf', commit, license: 'apache-2.0', gated: false, modelType: 'mamba' });
    expect(await client().modelInfo('tiiuae/falcon-mamba-7b', 'v2')).toMatchObject({ gated: 'manual', license: 'other' });
    expect(server.hubRequests.at(-1)?.url).toBe('/api/models/tiiuae/falcon-mamba-7b/revision/v2');
  });
});
