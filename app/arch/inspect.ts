/**
 * Opens a model's files far enough to know what it is — config, tensor index, shapes, parameter
 * count — without reading any weights. Everything wrong is a ModelFileError naming the file.
 */
import { parseConfigJson } from '../formats/config.js';
import { readEosTokenIds, type EosRead } from '../formats/eos.js';
import { ModelFileError } from '../formats/errors.js';
import { readPytorchCheckpoint } from '../formats/pytorch.js';
import { readSafetensorsHeader, type SafetensorsDtype } from '../formats/safetensors.js';
import type { ModelFiles } from '../formats/model-files.js';
import type { MambaConfig } from '../model/config.js';
import type { ModelInspection, TensorLocation } from '../model/inspection.js';
import { chatTemplateFromFiles, chatTemplateFromGguf, type ChatTemplate } from '../tokenizer/chat-template.js';
import { ggufTokenizerText, hasGgufTokenizer } from '../tokenizer/gguf.js';
import { openGguf } from './gguf.js';
import { MISTRAL_PARAMS, MISTRAL_WEIGHTS, mistralParamsConfig, mistralTensorName } from './mistral-params.js';
import { architectureLabel, architectureSpec, canonicalConfig } from './registry.js';
import { checkWeights } from './tensors.js';

export type { ModelInspection, TensorLocation };

const INDEX = 'model.safetensors.index.json';
/** The shard index of a sharded PyTorch checkpoint (transformers' save_pretrained with safe_serialization=False). */
export const PYTORCH_INDEX = 'pytorch_model.bin.index.json';
/** A PyTorch checkpoint's weights file (torch.save's zip format). */
export const isPytorchWeightsName = (name: string) => /\.bin$/i.test(name);
export const GENERATION_CONFIG = 'generation_config.json';
export const GGUF_EOS_KEY = 'tokenizer.ggml.eos_token_id';

/**
 * A safetensors model's end-of-sequence ids: generation_config.json's `eos_token_id` when the
 * folder has that file and it names valid ids (transformers' generation reads it in preference to
 * config.json's), else config.json's. A broken generation_config.json or a refused value is a
 * warning, never an error (app/formats/eos.ts says why).
 */
async function safetensorsEos(model: ModelFiles, names: readonly string[], configFile: string, rawConfig: Record<string, unknown>, vocabSize: number): Promise<EosRead & { warnings: string[] }> {
  const warnings: string[] = [];
  if (names.includes(GENERATION_CONFIG)) {
    const file = model.pathOf(GENERATION_CONFIG);
    try {
      const generation = parseConfigJson(file, await model.readText(GENERATION_CONFIG));
      const read = readEosTokenIds(file, 'eos_token_id', generation.eos_token_id, vocabSize);
      if (read.warning) warnings.push(read.warning);
      if (read.ids.length > 0) return { ids: read.ids, warnings };
    } catch (error) {
      if (!(error instanceof ModelFileError)) throw error;
      warnings.push(`${error.message}; its end-of-sequence token is ignored`);
    }
  }
  const read = readEosTokenIds(configFile, 'eos_token_id', rawConfig.eos_token_id, vocabSize);
  return { ids: read.ids, warnings: read.warning ? [...warnings, read.warning] : warnings };
}

/** The warning of a safetensors model with no tokenizer (and no byte vocabulary): only token ids work. */
export const noTokenizerWarning = (name: string) => `${name}: no tokenizer.json; text prompts need one (token ids still work)`;

/**
 * Tokenizer files the studio does not read, in the order they are named: mistral's SentencePiece
 * models (tokenizer.model.v3 is what Mamba-Codestral's model card downloads; tokenizer.model is
 * transformers' copy) and its Tekken tokenizer. A folder with one of them and no tokenizer.json
 * runs on token ids, and the warning says which file it has and what to add.
 */
export const UNREAD_TOKENIZER_FILES: readonly string[] = ['tokenizer.model.v3', 'tokenizer.model', 'tekken.json'];
export const unreadTokenizerWarning = (path: string, name: string) =>
  `${path}: ${name === 'tekken.json' ? "mistral's Tekken tokenizer" : 'a SentencePiece tokenizer'}, which the studio does not read; ` +
  'text prompts need the tokenizer.json of the same model beside the weights (the Hub repo has one; token ids still work)';
const TOKENIZER_CONFIG = 'tokenizer_config.json';
const SUPPORTED_WEIGHT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/** The shards an index file (`weight_map`: tensor → file) names, each checked to be in the folder. */
async function indexShards(model: ModelFiles, names: string[], index: string): Promise<string[]> {
  const file = model.pathOf(index);
  const parsed = parseConfigJson(file, await model.readText(index));
  const map = parsed.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new ModelFileError(file, 'has no "weight_map" object');
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  if (!shards.every((s): s is string => typeof s === 'string')) throw new ModelFileError(file, '"weight_map" values must be file names');
  const missing = shards.filter((s) => !names.includes(s));
  if (missing.length) throw new ModelFileError(file, `names shard(s) that are not in the folder: ${missing.join(', ')}`);
  return shards.sort();
}

async function safetensorsFiles(model: ModelFiles, names: string[]): Promise<string[]> {
  if (names.includes(INDEX)) return indexShards(model, names, INDEX);
  const single = names.filter((n) => n.endsWith('.safetensors'));
  if (single.length === 0) {
    const other = names.find((n) => /\.(pt|pth|ckpt)$/.test(n));
    throw new ModelFileError(
      model.name,
      other ? `holds a PyTorch file (${other}) the studio does not open: it reads pytorch_model.bin (torch.save's zip format) and safetensors; convert it to safetensors` : 'no model here: no .safetensors, .bin or .gguf file',
    );
  }
  if (single.length > 1 && !single.includes('model.safetensors')) {
    throw new ModelFileError(model.name, `several .safetensors files (${single.join(', ')}) and no ${INDEX}`);
  }
  return [single.includes('model.safetensors') ? 'model.safetensors' : (single[0] as string)];
}

async function pytorchFiles(model: ModelFiles, names: string[]): Promise<string[]> {
  if (names.includes(PYTORCH_INDEX)) return indexShards(model, names, PYTORCH_INDEX);
  if (names.includes('pytorch_model.bin')) return ['pytorch_model.bin'];
  const bins = names.filter(isPytorchWeightsName);
  if (bins.length !== 1) throw new ModelFileError(model.name, `several .bin files (${bins.join(', ')}), no pytorch_model.bin and no ${PYTORCH_INDEX}`);
  return bins;
}

/**
 * Which files of a safetensors folder describe the model. A folder may hold both mistral's form
 * (params.json + consolidated.safetensors, as mistralai/Mamba-Codestral-7B-v0.1's model card
 * downloads it) and transformers' (config.json + model-*.safetensors, the same repo's other copy):
 * then mistral's is read and the other is not opened — it is what mistral-inference runs and how
 * the model was trained (mamba_ssm: the gated norm per group), while transformers normalizes
 * over all of d_inner — and a warning says so.
 */
function safetensorsForm(model: ModelFiles, names: readonly string[]): { form: 'mistral' | 'transformers'; warnings: string[] } {
  const hasParams = names.includes(MISTRAL_PARAMS);
  const hasConsolidated = names.includes(MISTRAL_WEIGHTS);
  if (hasParams && hasConsolidated) {
    const others = names.filter((n) => n === 'config.json' || (n.endsWith('.safetensors') && n !== MISTRAL_WEIGHTS) || n === INDEX);
    const warnings = others.length
      ? [
          `${model.name}: holds mistral's ${MISTRAL_PARAMS} + ${MISTRAL_WEIGHTS} and also ${others.join(', ')}; the studio reads mistral's ` +
            "(the form mistral-inference runs, with mamba_ssm's per-group gated norm) and not the others",
        ]
      : [];
    return { form: 'mistral', warnings };
  }
  if (!names.includes('config.json')) {
    if (hasConsolidated) throw new ModelFileError(model.pathOf(MISTRAL_WEIGHTS), `is mistral's format and needs its ${MISTRAL_PARAMS} beside it (or config.json)`);
    if (hasParams) throw new ModelFileError(model.pathOf(MISTRAL_PARAMS), `is mistral's format and needs its ${MISTRAL_WEIGHTS} beside it`);
    throw new ModelFileError(model.name, names.some((n) => n.endsWith('.safetensors') || isPytorchWeightsName(n)) ? 'no config.json next to the weights' : 'no model here: no config.json and no weights');
  }
  return { form: 'transformers', warnings: [] };
}

export async function inspectSafetensorsModel(model: ModelFiles): Promise<ModelInspection> {
  return inspectConfigModel(model, 'safetensors');
}

/** A model of a config (config.json, or mistral's params.json) and weight files (safetensors, or a PyTorch .bin checkpoint). */
async function inspectConfigModel(model: ModelFiles, format: 'safetensors' | 'pytorch'): Promise<ModelInspection> {
  const names = await model.list();
  let formWarnings: string[] = [];
  let mistral = false;
  if (format === 'safetensors') {
    const form = safetensorsForm(model, names);
    formWarnings = form.warnings;
    mistral = form.form === 'mistral';
  } else if (!names.includes('config.json')) {
    throw new ModelFileError(model.name, 'no config.json next to the weights');
  }
  const configName = mistral ? MISTRAL_PARAMS : 'config.json';
  const configFile = model.pathOf(configName);
  const rawConfig = parseConfigJson(configFile, await model.readText(configName));
  const config = mistral ? mistralParamsConfig(configFile, rawConfig) : canonicalConfig(configFile, rawConfig);
  const weightFiles = mistral ? [MISTRAL_WEIGHTS] : format === 'pytorch' ? await pytorchFiles(model, names) : await safetensorsFiles(model, names);
  const tensors = new Map<string, TensorLocation>();
  let weightBytes = 0;
  for (const file of weightFiles) {
    const source = await model.open(file);
    weightBytes += source.size;
    const found: ReadonlyMap<string, { name: string; dtype: SafetensorsDtype; shape: number[]; offset: number; byteLength: number }> =
      format === 'pytorch' ? (await readPytorchCheckpoint(source)).tensors : (await readSafetensorsHeader(source)).tensors;
    for (const t of found.values()) {
      const name = mistral ? mistralTensorName(t.name) : t.name;
      if (tensors.has(name)) {
        const other = tensors.get(name)?.file;
        throw new ModelFileError(source.name, other === file ? `tensor "${t.name}" appears twice (as "${name}")` : `tensor "${t.name}" also appears in ${other}`);
      }
      if (!SUPPORTED_WEIGHT_DTYPES.has(t.dtype)) {
        throw new ModelFileError(source.name, `tensor "${t.name}" has dtype ${t.dtype}; weights must be F32, F16 or BF16`);
      }
      tensors.set(name, { name, shape: t.shape, offset: t.offset, byteLength: t.byteLength, dtype: t.dtype, file, encoding: format });
    }
  }
  if (format === 'pytorch') dropSharedHead(tensors);
  const check = checkWeights(`${model.name}/${weightFiles.join(', ')}`, config, tensors);
  let parameters = 0;
  for (const spec of check.expected) {
    const t = tensors.get(spec.name);
    if (t) parameters += t.shape.reduce((a, b) => a * b, 1);
  }
  const hasTokenizer = names.includes('tokenizer.json');
  // params.json names no end-of-sequence token: only a generation_config.json can (config.json, when there, is not read).
  const eos = await safetensorsEos(model, names, configFile, mistral ? {} : rawConfig, config.vocabSize);
  const unread = UNREAD_TOKENIZER_FILES.find((n) => names.includes(n));
  const tokenizerWarnings =
    hasTokenizer || config.vocabSize === 256 ? [] : [unread ? unreadTokenizerWarning(model.pathOf(unread), unread) : noTokenizerWarning(model.name)];
  return {
    architecture: config.architecture,
    format,
    config,
    parameters,
    tensors,
    tiedHead: check.tiedHead,
    embeddingName: check.embeddingName,
    weightFiles,
    weightBytes,
    tokenizer: hasTokenizer ? 'tokenizer.json' : config.vocabSize === 256 ? 'bytes' : 'none',
    eosTokenIds: eos.ids,
    warnings: [...formWarnings, ...groupNormWarnings(configFile, config), ...check.warnings, ...tokenizerWarnings, ...eos.warnings],
  };
}

/**
 * A tied checkpoint pickles lm_head.weight as a view of the embedding's storage (mamba_ssm's
 * tie_weights): the same bytes under two names. The head then is the embedding (tiedHead), and
 * its bytes are not loaded to the GPU twice.
 */
function dropSharedHead(tensors: Map<string, TensorLocation>): void {
  const head = tensors.get('lm_head.weight');
  if (!head) return;
  for (const t of tensors.values()) {
    if (t !== head && t.file === head.file && t.offset === head.offset && t.byteLength === head.byteLength && t.dtype === head.dtype && t.shape.join() === head.shape.join()) {
      tensors.delete('lm_head.weight');
      return;
    }
  }
}

/**
 * A transformers Mamba-2 config with several groups runs as transformers runs it: the gated
 * RMSNorm over all of d_inner. The library that trained such checkpoints (mamba_ssm; llama.cpp
 * runs them so too) normalizes per group, and the outputs differ; the warning says where that
 * other behaviour comes from.
 */
function groupNormWarnings(configFile: string, config: MambaConfig): string[] {
  if (config.source !== 'transformers' || config.nGroups <= 1 || config.normGroupSize !== config.dInner) return [];
  return [
    `${configFile}: n_groups ${config.nGroups}: the gated RMSNorm runs over all ${config.dInner} channels of d_inner, as transformers runs it; ` +
      `mamba_ssm, mistral-inference and llama.cpp run it per group of ${config.dInner / config.nGroups} (for Mamba-Codestral, open the folder with ` +
      `mistral's ${MISTRAL_PARAMS} + ${MISTRAL_WEIGHTS} to run it their way)`,
  ];
}

async function inspectGgufModel(model: ModelFiles, file: string): Promise<ModelInspection> {
  const source = await model.open(file);
  const { header, config, table, check } = await openGguf(source);
  const tensors = new Map<string, TensorLocation>();
  let parameters = 0;
  const needed = new Set(check.expected.map((e) => e.name));
  for (const t of table.tensors.values()) {
    if (!needed.has(t.name)) continue;
    tensors.set(t.name, {
      name: t.name, shape: t.shape, file, offset: t.offset, byteLength: t.byteLength,
      encoding: 'gguf', dtype: t.dtype, ggufName: t.ggufName, transform: t.transform,
    });
    parameters += t.shape.reduce((a, b) => a * b, 1);
  }
  const names = await model.list();
  const hasTokenizer = names.includes('tokenizer.json');
  // A tokenizer.json beside the GGUF file wins over the tokenizer in its metadata: the user put it
  // there on purpose (and it is read exactly as a safetensors checkpoint's). Otherwise the embedded
  // one, when the studio can run it; when it cannot (another tokenizer model, missing or broken
  // keys) the model still loads, with token-id prompts, and the reason is a warning.
  let embedded: { file: string; json: string } | undefined;
  const tokenizerWarnings: string[] = [];
  if (!hasTokenizer && hasGgufTokenizer(header.metadata)) {
    try {
      embedded = { file: source.name, json: ggufTokenizerText(source.name, header.metadata) };
    } catch (error) {
      if (!(error instanceof ModelFileError)) throw error;
      const fallback = config.vocabSize === 256 ? 'the model is read as raw bytes' : 'text prompts need a tokenizer.json beside the GGUF file (token ids still work)';
      tokenizerWarnings.push(`${error.message}; ${fallback}`);
    }
  } else if (!hasTokenizer && config.vocabSize !== 256) {
    tokenizerWarnings.push(`${source.name}: no tokenizer.json beside the GGUF file and no tokenizer in its metadata; text prompts need one (token ids still work)`);
  }
  const eos = readEosTokenIds(source.name, GGUF_EOS_KEY, header.metadata.get(GGUF_EOS_KEY), config.vocabSize);
  // The chat template in the metadata, read now (the metadata is not kept); a broken one is told when the model loads (chatTemplateSource).
  let ggufChatTemplate: ModelInspection['ggufChatTemplate'];
  try {
    const template = chatTemplateFromGguf(source.name, header.metadata);
    if (template) ggufChatTemplate = template;
  } catch (error) {
    if (!(error instanceof ModelFileError)) throw error;
    ggufChatTemplate = { error: error.message };
  }
  return {
    architecture: config.architecture,
    format: 'gguf',
    config,
    parameters,
    tensors,
    tiedHead: check.tiedHead,
    embeddingName: check.embeddingName,
    weightFiles: [file],
    weightBytes: source.size,
    tokenizer: hasTokenizer ? 'tokenizer.json' : embedded ? 'gguf' : config.vocabSize === 256 ? 'bytes' : 'none',
    ...(embedded ? { ggufTokenizer: embedded } : {}),
    eosTokenIds: eos.ids,
    ...(ggufChatTemplate ? { ggufChatTemplate } : {}),
    warnings: [...check.warnings, ...tokenizerWarnings, ...(eos.warning ? [eos.warning] : [])],
  };
}

/**
 * Any model the studio opens: a safetensors folder (or file), a GGUF file, or a PyTorch checkpoint
 * (pytorch_model.bin or its shards; safetensors win when a folder has both, as the Hub's often do).
 */
export async function inspectModel(model: ModelFiles): Promise<ModelInspection> {
  const names = await model.list();
  const ggufs = names.filter((n) => /\.gguf$/i.test(n));
  const hasSafetensors = names.some((n) => n.endsWith('.safetensors'));
  if (ggufs.length > 0 && !hasSafetensors) {
    if (ggufs.length > 1) throw new ModelFileError(model.name, `several GGUF files (${ggufs.join(', ')}): open one of them`);
    return inspectGgufModel(model, ggufs[0] as string);
  }
  if (!hasSafetensors && (names.includes(PYTORCH_INDEX) || names.some(isPytorchWeightsName))) return inspectConfigModel(model, 'pytorch');
  return inspectSafetensorsModel(model);
}

/**
 * What `tokenizerFor` (app/tokenizer) needs for a model: the tokenizer.json text (read from the
 * model's files, or built from the GGUF metadata at inspection), or null (raw bytes, or no
 * tokenizer); and the file its errors name.
 */
export async function tokenizerSource(model: ModelFiles, inspection: ModelInspection): Promise<{ json: string | null; file: string }> {
  if (inspection.tokenizer === 'gguf' && inspection.ggufTokenizer) return inspection.ggufTokenizer;
  const file = model.pathOf('tokenizer.json');
  return { json: inspection.tokenizer === 'tokenizer.json' ? await model.readText('tokenizer.json') : null, file };
}

/**
 * The model's chat template (instruct models): from chat_template.jinja, chat_template.json or
 * tokenizer_config.json's `chat_template` (chatTemplateFromFiles), else the GGUF metadata's
 * `tokenizer.chat_template` (files beside a GGUF file win, as tokenizer.json does). A file that is
 * there but cannot be used is `error` (naming the file), never a failure to load: the model still
 * runs prompts without it.
 */
export async function chatTemplateSource(model: ModelFiles, inspection: ModelInspection): Promise<{ template: ChatTemplate | null; error?: string }> {
  const names = await model.list();
  const read = async (name: string) => (names.includes(name) ? { file: model.pathOf(name), text: await model.readText(name) } : undefined);
  try {
    const [tokenizerConfig, jinja, json] = [await read(TOKENIZER_CONFIG), await read('chat_template.jinja'), await read('chat_template.json')];
    const template = chatTemplateFromFiles({ ...(tokenizerConfig ? { tokenizerConfig } : {}), ...(jinja ? { jinja } : {}), ...(json ? { json } : {}) });
    if (template || jinja || json) return { template };
  } catch (error) {
    if (!(error instanceof ModelFileError)) throw error;
    return { template: null, error: error.message };
  }
  const gguf = inspection.ggufChatTemplate;
  if (!gguf) return { template: null };
  return 'error' in gguf ? { template: null, error: gguf.error } : { template: gguf };
}

/**
 * The model in words, as `info` names it: the architecture, for Mamba-2 its groups and how its
 * gated norm runs, and the convention it was read in — e.g. "Mamba-2, 8 groups, gated norm per
 * group of 1024; mistral params.json + consolidated.safetensors".
 */
/** "4 Mamba, 2 attention, 2 MLP blocks": a hybrid's blocks by kind. */
export function hybridLayout(blocks: readonly { kind: string }[]): string {
  const names: Record<string, string> = { ssm: 'Mamba', attention: 'attention', mlp: 'MLP' };
  const counts = new Map<string, number>();
  for (const b of blocks) counts.set(b.kind, (counts.get(b.kind) ?? 0) + 1);
  return `${[...counts].map(([kind, n]) => `${n} ${names[kind] ?? kind}`).join(', ')} blocks`;
}

export function modelVariant(inspection: Pick<ModelInspection, 'config' | 'format' | 'weightFiles'>): string {
  const c = inspection.config;
  const parts = [architectureSpec(c.architecture).label];
  if (c.hybrid) parts.push(hybridLayout(c.hybrid.blocks));
  if (c.nGroups >= 1) parts.push(`${c.nGroups} group${c.nGroups === 1 ? '' : 's'}`);
  if (c.nGroups > 1) parts.push(c.normGroupSize === c.dInner ? 'gated norm over all of d_inner (as transformers)' : `gated norm per group of ${c.normGroupSize}`);
  const from =
    inspection.format === 'gguf'
      ? 'GGUF'
      : inspection.weightFiles.length === 1 && inspection.weightFiles[0] === MISTRAL_WEIGHTS
        ? `mistral ${MISTRAL_PARAMS} + ${MISTRAL_WEIGHTS}`
        : inspection.format === 'pytorch'
          ? `${c.source} config.json + PyTorch .bin`
          : `${c.source} config.json + safetensors`;
  return `${parts.join(', ')}; ${from}`;
}

/** JSON-friendly summary (for IPC, the CLI's `info`, and the UI). */
export function summarizeInspection(inspection: ModelInspection) {
  return {
    architecture: inspection.architecture,
    /** For people: "Mamba", "Mamba-2", "Falcon-Mamba". */
    label: architectureLabel(inspection.architecture),
    variant: modelVariant(inspection),
    format: inspection.format,
    config: { ...inspection.config, timeStepLimit: inspection.config.timeStepLimit.map((x) => (Number.isFinite(x) ? x : String(x))) },
    parameters: inspection.parameters,
    tiedHead: inspection.tiedHead,
    tokenizer: inspection.tokenizer,
    eosTokenIds: inspection.eosTokenIds ?? [],
    weightFiles: inspection.weightFiles,
    tensors: Object.fromEntries([...inspection.tensors.values()].map((t) => [t.name, { shape: t.shape, dtype: t.dtype }])),
    warnings: inspection.warnings,
  };
}
export type InspectionSummary = ReturnType<typeof summarizeInspection>;
