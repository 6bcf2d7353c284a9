/**
 * The inverse of app/analysis/export.ts: a trace file (or a session file, app/analysis/session.ts,
 * which holds the same tensors) read back into a TraceResult, strictly. Every check runs on the
 * header before a tensor is read, so a hostile file costs at most its header: the format and
 * metadata, the layer list, each tensor's dtype and shape against the others (T from input_ids,
 * one Δ width, one B/C width = n_groups·d_state), sizes under plausible bounds; then the tensors,
 * which the safetensors reader has already checked lie inside the file. Any problem is one
 * ModelFileError naming the file.
 *
 * Summaries a file lacks (a trace written before they were exported, or by a live trace) are
 * filled so that panels show "no data" rather than fail: ‖Δ_t‖ is recomputed from Δ; the write
 * gate and state norms become NaN; A becomes empty (the memory panel then has no retention curve).
 */
import { ModelFileError } from '../formats/errors.js';
import { readSafetensorsHeader, readTensorBytes, type TensorInfo } from '../formats/safetensors.js';
import { memorySource, type ByteSource } from '../formats/source.js';
import { TRACE_FORMAT } from './export.js';
import type { TraceResult } from './types.js';

/** A session file's format (app/analysis/session.ts): the trace tensors plus the session JSON. */
export const SESSION_FORMAT = 'mamba-studio/session@1';

/** Bounds on what a trace file may describe: far above any real trace, far below what would exhaust memory. */
export const TRACE_FILE_LIMITS = {
  tokens: 1 << 20,
  layers: 1024,
  width: 1 << 16,
  bc: 1 << 16,
  topK: 1024,
  aStates: 1 << 12,
  tokenText: 1024,
  metadataText: 64 * 1024 * 1024,
} as const;

export interface OpenedTrace {
  /** The trace, with traceId `file:<name>` (the engine does not hold it). */
  result: TraceResult;
  /** What was traced, as the file says. */
  prompt: { text: string } | { ids: number[] };
  /** The file's metadata, as read (a session file's JSON is in `session`). */
  metadata: Record<string, string>;
}

const LAYER_TENSOR = /^layers\.(0|[1-9][0-9]{0,5})\.(delta|B|C|delta_norm|write_gate|state_norm|state_norm_by_head|A)$/;
const TOP_LEVEL = new Set(['input_ids', 'top_next.ids', 'top_next.probs', 'logits']);

function parseJson(file: string, key: string, text: string | undefined): unknown {
  if (text === undefined) throw new ModelFileError(file, `metadata has no "${key}"`);
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelFileError(file, `metadata "${key}" is not valid JSON`);
  }
}

function positiveInt(file: string, key: string, text: string | undefined, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]{0,9}$/.test(text) || Number(text) > max) throw new ModelFileError(file, `metadata "${key}" is ${JSON.stringify(text.slice(0, 20))}, expected a whole number from 1 to ${max}`);
  return Number(text);
}

const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** Reads and checks a trace file (or a session file's trace) from a byte source. */
export async function readTraceFile(source: ByteSource): Promise<OpenedTrace> {
  const file = source.name;
  const L = TRACE_FILE_LIMITS;
  const header = await readSafetensorsHeader(source);
  const meta = header.metadata;
  if (meta.format !== TRACE_FORMAT && meta.format !== SESSION_FORMAT) {
    throw new ModelFileError(file, `not a Mamba Studio trace: metadata format is ${meta.format === undefined ? 'missing' : JSON.stringify(meta.format.slice(0, 60))}, expected "${TRACE_FORMAT}" (the app's "Export trace") or "${SESSION_FORMAT}"`);
  }
  const tensors = header.tensors;
  const get = (name: string): TensorInfo | undefined => tensors.get(name);
  const expect = (name: string, dtype: 'F32' | 'I32', shape: readonly number[]): TensorInfo => {
    const t = get(name);
    if (!t) throw new ModelFileError(file, `tensor "${name}" is missing`);
    if (t.dtype !== dtype) throw new ModelFileError(file, `tensor "${name}" is ${t.dtype}, expected ${dtype}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFileError(file, `tensor "${name}" has shape ${shapeText(t.shape)}, expected ${shapeText(shape)}`);
    }
    return t;
  };

  // Names: every tensor one this format defines.
  for (const name of tensors.keys()) {
    if (!TOP_LEVEL.has(name) && !LAYER_TENSOR.test(name)) throw new ModelFileError(file, `unexpected tensor "${name.slice(0, 80)}": not part of a trace file`);
  }

  // T from input_ids.
  const idsInfo = get('input_ids');
  if (!idsInfo) throw new ModelFileError(file, 'tensor "input_ids" is missing');
  if (idsInfo.dtype !== 'I32' || idsInfo.shape.length !== 1) throw new ModelFileError(file, `tensor "input_ids" is ${idsInfo.dtype} ${shapeText(idsInfo.shape)}, expected I32 [T]`);
  const T = idsInfo.shape[0] as number;
  if (T < 1 || T > L.tokens) throw new ModelFileError(file, `the trace has ${T} tokens; expected 1 to ${L.tokens}`);

  // Layers: a JSON array of distinct ascending layer numbers, each with its tensors.
  const layersValue = parseJson(file, 'layers', meta.layers);
  if (!Array.isArray(layersValue) || layersValue.length < 1 || layersValue.length > L.layers) {
    throw new ModelFileError(file, `metadata "layers" must be a list of 1 to ${L.layers} layer numbers`);
  }
  const layers: number[] = [];
  for (const l of layersValue) {
    if (!Number.isInteger(l) || (l as number) < 0 || (l as number) > 99_999 || (layers.length > 0 && (l as number) <= (layers[layers.length - 1] as number))) {
      throw new ModelFileError(file, 'metadata "layers" must hold ascending, distinct whole layer numbers');
    }
    layers.push(l as number);
  }
  const layerSet = new Set(layers);
  for (const name of tensors.keys()) {
    const m = LAYER_TENSOR.exec(name);
    if (m && !layerSet.has(Number(m[1]))) throw new ModelFileError(file, `tensor "${name}" is of layer ${m[1]}, which metadata "layers" does not list`);
  }

  const deltaUnit = meta.delta_unit;
  if (deltaUnit !== 'channel' && deltaUnit !== 'head') throw new ModelFileError(file, 'metadata "delta_unit" must be "channel" or "head"');
  const architecture = meta.architecture ?? '';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(architecture)) throw new ModelFileError(file, 'metadata "architecture" is missing or not a plain name');
  const modelId = meta.model ?? '';
  if (modelId.length < 1 || modelId.length > 512) throw new ModelFileError(file, 'metadata "model" is missing or longer than 512 characters');

  // Widths from the first layer; every layer must agree.
  const first = get(`layers.${layers[0]}.delta`);
  const firstB = get(`layers.${layers[0]}.B`);
  if (!first || first.shape.length !== 2) throw new ModelFileError(file, `tensor "layers.${layers[0]}.delta" is missing or not [T, width]`);
  if (!firstB || firstB.shape.length !== 2) throw new ModelFileError(file, `tensor "layers.${layers[0]}.B" is missing or not [T, n_groups·d_state]`);
  const width = first.shape[1] as number;
  const bc = firstB.shape[1] as number;
  if (width < 1 || width > L.width) throw new ModelFileError(file, `Δ has ${width} columns; expected 1 to ${L.width}`);
  if (bc < 1 || bc > L.bc) throw new ModelFileError(file, `B has ${bc} columns; expected 1 to ${L.bc}`);
  let nGroups = positiveInt(file, 'n_groups', meta.n_groups, L.bc);
  let dState = positiveInt(file, 'd_state', meta.d_state, L.bc);
  if (nGroups === undefined || dState === undefined) {
    if (deltaUnit === 'head') throw new ModelFileError(file, 'metadata "n_groups" and "d_state" are missing (needed to read a Mamba-2 trace\'s B and C)');
    nGroups = 1;
    dState = bc;
  }
  if (nGroups * dState !== bc) throw new ModelFileError(file, `B and C have ${bc} columns, but n_groups·d_state = ${nGroups}·${dState}`);

  // Optional summaries: all layers or none of each kind.
  const optional = (kind: string) => {
    const present = layers.filter((l) => tensors.has(`layers.${l}.${kind}`)).length;
    if (present !== 0 && present !== layers.length) throw new ModelFileError(file, `"${kind}" is given for ${present} of ${layers.length} layers`);
    return present > 0;
  };
  const hasNorm = optional('delta_norm');
  const hasGate = optional('write_gate');
  const hasState = optional('state_norm');
  const hasByHead = optional('state_norm_by_head');
  const hasA = optional('A');
  if (hasByHead && deltaUnit !== 'head') throw new ModelFileError(file, '"state_norm_by_head" is given for a trace whose Δ is per channel');
  let aStates = 0;
  if (hasA) {
    const a = get(`layers.${layers[0]}.A`) as TensorInfo;
    aStates = a.shape[1] ?? 0;
    if (a.shape.length !== 2 || aStates < 1 || aStates > L.aStates) throw new ModelFileError(file, `tensor "layers.${layers[0]}.A" has shape ${shapeText(a.shape)}, expected [${width}, states]`);
  }
  // Check every shape before reading anything.
  const plan: { name: string; info: TensorInfo }[] = [];
  for (const l of layers) {
    plan.push({ name: `delta`, info: expect(`layers.${l}.delta`, 'F32', [T, width]) });
    plan.push({ name: `B`, info: expect(`layers.${l}.B`, 'F32', [T, bc]) });
    plan.push({ name: `C`, info: expect(`layers.${l}.C`, 'F32', [T, bc]) });
    if (hasNorm) expect(`layers.${l}.delta_norm`, 'F32', [T]);
    if (hasGate) expect(`layers.${l}.write_gate`, 'F32', [T]);
    if (hasState) expect(`layers.${l}.state_norm`, 'F32', [T]);
    if (hasByHead) expect(`layers.${l}.state_norm_by_head`, 'F32', [T, width]);
    if (hasA) expect(`layers.${l}.A`, 'F32', [width, aStates]);
  }
  const hasTopIds = tensors.has('top_next.ids');
  if (hasTopIds !== tensors.has('top_next.probs')) throw new ModelFileError(file, 'top_next.ids and top_next.probs must come together');
  let k = 0;
  if (hasTopIds) {
    const info = get('top_next.ids') as TensorInfo;
    k = info.shape[1] ?? 0;
    if (info.shape.length !== 2 || k < 1 || k > L.topK) throw new ModelFileError(file, `tensor "top_next.ids" has shape ${shapeText(info.shape)}, expected [${T}, k ≤ ${L.topK}]`);
    expect('top_next.ids', 'I32', [T, k]);
    expect('top_next.probs', 'F32', [T, k]);
  }
  if (tensors.has('logits')) {
    const logits = get('logits') as TensorInfo;
    if (logits.dtype !== 'F32' || logits.shape.length !== 2 || logits.shape[0] !== T) throw new ModelFileError(file, `tensor "logits" has shape ${shapeText(logits.shape)}, expected F32 [${T}, vocab]`);
  }

  // Metadata that must agree with the tensors.
  let tokens: string[] | null = null;
  if (meta.tokens !== undefined) {
    const value = parseJson(file, 'tokens', meta.tokens);
    if (!Array.isArray(value) || value.length !== T || value.some((x) => typeof x !== 'string' || x.length > L.tokenText)) {
      throw new ModelFileError(file, `metadata "tokens" must be a list of ${T} token texts (each up to ${L.tokenText} characters)`);
    }
    tokens = value as string[];
  }

  // Now read: sizes are bounded by the file's own size (the header reader checked every range).
  const f32 = async (name: string): Promise<Float32Array> => {
    const info = get(name) as TensorInfo;
    const bytes = await readTensorBytes(source, info);
    const out = new Float32Array(info.byteLength / 4);
    new Uint8Array(out.buffer).set(bytes.subarray(0, info.byteLength));
    return out;
  };
  const i32 = async (name: string): Promise<Int32Array> => {
    const info = get(name) as TensorInfo;
    const bytes = await readTensorBytes(source, info);
    const out = new Int32Array(info.byteLength / 4);
    new Uint8Array(out.buffer).set(bytes.subarray(0, info.byteLength));
    return out;
  };
  const idsArray = await i32('input_ids');
  for (const id of idsArray) if (id < 0) throw new ModelFileError(file, `input_ids holds a negative token id (${id})`);
  const ids = [...idsArray];
  if (meta.ids !== undefined) {
    const listed = parseJson(file, 'ids', meta.ids);
    if (!Array.isArray(listed) || listed.length !== T || listed.some((x, i) => x !== ids[i])) throw new ModelFileError(file, 'metadata "ids" does not match tensor "input_ids"');
  }

  const delta: Float32Array[] = [];
  const B: Float32Array[] = [];
  const C: Float32Array[] = [];
  const deltaNorm: Float32Array[] = [];
  const writeGate: Float32Array[] = [];
  const stateNorm: Float32Array[] = [];
  const stateNormByHead: Float32Array[] = [];
  const A: Float32Array[] = [];
  const nan = () => new Float32Array(T).fill(Number.NaN);
  for (const l of layers) {
    const d = await f32(`layers.${l}.delta`);
    delta.push(d);
    B.push(await f32(`layers.${l}.B`));
    C.push(await f32(`layers.${l}.C`));
    if (hasNorm) deltaNorm.push(await f32(`layers.${l}.delta_norm`));
    else {
      const norms = new Float32Array(T);
      for (let t = 0; t < T; t++) {
        let sum = 0;
        for (let c = 0; c < width; c++) sum += (d[t * width + c] as number) ** 2;
        norms[t] = Math.sqrt(sum);
      }
      deltaNorm.push(norms);
    }
    writeGate.push(hasGate ? await f32(`layers.${l}.write_gate`) : nan());
    stateNorm.push(hasState ? await f32(`layers.${l}.state_norm`) : nan());
    if (hasByHead) stateNormByHead.push(await f32(`layers.${l}.state_norm_by_head`));
    if (hasA) A.push(await f32(`layers.${l}.A`));
  }
  const topNext = hasTopIds ? { k, ids: await i32('top_next.ids'), probs: await f32('top_next.probs') } : { k: 0, ids: new Int32Array(0), probs: new Float32Array(0) };

  let prompt: OpenedTrace['prompt'] = { ids };
  if (meta.prompt !== undefined) {
    if (meta.prompt_kind === 'ids' || (meta.prompt_kind === undefined && /^\[[0-9,\s]*\]$/.test(meta.prompt))) {
      const value = parseJson(file, 'prompt', meta.prompt);
      if (!Array.isArray(value) || value.length > L.tokens || value.some((x) => !Number.isInteger(x) || (x as number) < 0)) throw new ModelFileError(file, 'metadata "prompt" must be a list of token ids');
      prompt = { ids: value as number[] };
    } else if (meta.prompt_kind === undefined || meta.prompt_kind === 'text') {
      prompt = { text: meta.prompt };
    } else {
      throw new ModelFileError(file, 'metadata "prompt_kind" must be "text" or "ids"');
    }
  }

  const result: TraceResult = {
    traceId: `file:${file}`,
    modelId,
    architecture,
    ids,
    tokens: tokens ?? ids.map(String),
    layers,
    deltaWidth: width,
    deltaUnit,
    delta,
    deltaNorm,
    writeGate,
    dState,
    nGroups,
    B,
    C,
    A,
    aStates: hasA ? aStates : deltaUnit === 'head' ? 1 : dState,
    stateNorm,
    ...(hasByHead ? { stateNormByHead } : {}),
    topNext,
  };
  return { result, prompt, metadata: meta };
}

/** The inverse of traceResultToSafetensors: the bytes of a trace file back into a TraceResult and its prompt. */
export function safetensorsToTraceResult(bytes: Uint8Array, file = 'trace.safetensors'): Promise<OpenedTrace> {
  return readTraceFile(memorySource(file, bytes));
}
