/**
 * Headless entry of the engine (Node + Dawn): `npm run cli -- <command>`.
 *   info --model <path>   what the model is: architecture, canonical config, parameters, tensors
 *   run   --model <path> (--prompt "…" | --input-ids 5,17,3) [sampling options] [--json]
 *   trace --model <path> (--prompt "…" | --input-ids …) --out trace.safetensors
 *   gpu                   the adapter found, and the GPU self-check (one kernel vs its CPU reference)
 *   pull <repo>           download a model from the Hugging Face Hub (app/node/pull.ts)
 * Errors about a model file print one line, `error: <file>: <problem>`, and exit with status 2.
 */
import { ModelFileError } from './formats/errors.js';
import { inspectModel, summarizeInspection } from './arch/inspect.js';
import { describeAdapter, summarizeAdapter, type AdapterSummary } from './gpu/adapter.js';
import { probeGridWorkgroups } from './gpu/grid-sync.js';
import { CONV_KERNEL_NAMES, DECODE_LOADS, DECODE_XPROJ_KINDS, openGpu, PREFILL_SCAN_KINDS, SSD_TILE_NAMES, type ConvKernelName, type DecodeLoads, type DecodeXProjKind, type KernelTuning, type PrefillScanKind, type SsdTileName } from './gpu/context.js';
import { runResidualRmsNormCheck } from './kernels/self-test.js';
import { benchDawnFlags, DAWN_TOGGLE_NAME, findNodeGpu } from './node/dawn.js';
import { folderModelFiles } from './node/folder.js';
import { openRunnableModel, type RunnableModel } from './node/run-model.js';
import { runSoak } from './node/soak.js';
import { pullCommand, PULL_USAGE } from './node/pull.js';
import { generate } from './model/generate.js';
import { Session } from './model/session.js';
import { promptTraceFile, tracePrompt } from './analysis/trace.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BENCH_WEIGHTS, randomWeights, runBench, SHAPES, shapeConfig, type BenchResult, type BenchWeights } from './bench/bench.js';
import { benchInt8Gemm } from './bench/int8-bench.js';
import { benchTrace } from './bench/trace-bench.js';
import { loadWeights } from './model/loader.js';
import { MAX_CONTEXT_TOKENS } from './model/config.js';
import { withContextTokens } from './model/inspection.js';
import { describeWeightFormats, WEIGHT_CHOICES, type WeightChoice } from './model/memory.js';
import { ANALYSIS_CHUNK, checkMemoryPlan, chunksOf, describeDeviceMemory, describeMemoryPlan, describeWeightsByFormat, modelChunks, planMemory, PREFILL_CHUNK, type MemoryPlan } from './model/memory-plan.js';
import { PREFILL_MATMULS, type PrefillMatmul } from './model/int8-plan.js';
import { usablePrefillMatmul } from './model/int8-prefill.js';
import { traceMemory } from './analysis/trace-memory.js';
import { WEIGHT_FORMATS } from './kernels/weight-format.js';
import { DEFAULT_CHUNK_LENGTH, MAX_CHUNK_LENGTH } from './kernels/selective-scan.js';
import { gridMatvecShapeFits } from './kernels/layer-grid.js';
import { TC_KERNELS, type TcKernel } from './kernels/int8-gemm.js';

const USAGE = `usage: mamba-studio-cli <command>

commands:
  info --model <path> [--weights auto|f32|f16] [--max-tokens 2048] [--trace-tokens 0] [--gpu] [--memory GB]
       [--prefill-matmul fp32|int8]
       [--context N]
                        print what the model is (JSON): architecture, config, parameters, tensors, warnings,
                        and "memory": the plan of what loading it takes on the GPU (weights by format, state,
                        activations for --max-tokens per prefill chunk: default 8,192 for a small model
                        (activations ≤ 1 GB), else 2,048 where the plan fits, else 256, as run and the app
                        choose it; a trace of --trace-tokens tokens);
                        --gpu checks it against the adapter's limits and memory (known from its name, else
                        unknown); --memory plans for that much GPU memory (decimal GB) instead; --context
                        (run, trace too): a hybrid's KV caches hold N tokens (default: its context, ≤ 16,384)
  run --model <path> (--prompt TEXT | --input-ids 5,17,3) [--max-tokens N] [--greedy]
      [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S] [--stop TEXT]
      [--ignore-eos] [--weights auto|f32|f16] [--json] [--context N] [--prefill-matmul fp32|int8]
                        generate, streaming text; stops at the model's end-of-sequence token (eos_token_id
                        of generation_config.json / config.json / GGUF; not printed) unless --ignore-eos;
                        --json prints {"ids": [...]} (generated ids only); --weights: the weights on the GPU,
                        auto (default) keeps an F16 checkpoint's halves, else fp32; --prefill-matmul int8:
                        the prompt's chunks of ≥ 64 tokens run the SSM projections on the int8 tensor cores
                        (Dawn's unsafe APIs; ~1–5 % logit error; fp32 with a warning where there are none)
  trace --model <path> (--prompt TEXT | --input-ids …) --out FILE [--weights auto|f32|f16] [--context N]
                        write every layer's delta, B, C, the top 5 next tokens and the logits as safetensors
  bench [--shape tiny|tiny-k|mamba-130m|mamba-370m|mamba-2.8b|mamba2-tiny|mamba2-130m|mamba2-2.7b|falcon-mamba-7b
        | --model <path>] [--prefill 128,512,2048,8192] [--decode 256] [--repeats 5] [--warmup 1] [--chunk N]
        [--weights f32,f16,bf16,q8_0,q4_0,q4_1,q5_0,q5_1,q4_k,q5_k,q6_k,q4_k_m | all] [--out FILE]
        [--no-ceilings] [--no-breakdown] [--trace TOKENS] [--trail-piece 1024,…] [--matvec [q4_k:]32x2x4[@512],…]
        [--prefill-matmul fp32,int8] [--grid off|auto|N[:IxOxU],…] [--scan-chunk N,…] [--scan-lanes N,…] [--prefill-scan parallel,channel,serial] [--split-groups N,…]
        [--int8-split-groups N,…] [--ssd-chunk N,…] [--ssd-tile narrow,wide] [--tc-kernel wide,wide-deep,double,single,quad,big] [--conv loop,k4]
        [--decode-xproj separate,folded] [--decode-loads early,late] [--decode-depth N,…] [--decode-batch N,…] [--dawn-features NAME,…]
                        prefill and decode tokens/s, GPU memory and the memory plan, ceilings, per-kernel
                        times (JSON to FILE); prefills in chunks of --chunk tokens (default: the app's
                        choice for the model on this GPU, 8,192 for small models, else 2,048 or 256 as
                        memory allows, at most the longest --prefill); random weights (made on the GPU) store the big matrices in
                        each listed format in turn (q4_k_m: Q4_K, embedding/LM head Q6_K; dt_proj only in
                        float formats); with --model, --weights takes auto, f32, f16; --trace N (default
                        131072) adds a long trace of N tokens: trace memory (GPU, JS), a 4,096-token window's
                        recompute time and the live trace's decode overhead (JSON "trace"; --trail-piece N,…
                        also times the windows detail with trail pieces of N tokens); --matvec measures the decode
                        matrix-vector kernel with each setting in turn: threads×rows×unroll, @ the most
                        workgroups, for the matrices in one storage format when prefixed; --prefill-matmul int8
                        runs the prefill's projections on the int8 tensor cores (refused without them) and
                        reports their accuracy against fp32 (JSON "int8_prefill"); --grid measures the
                        experimental grid decode (a one-group Mamba-2 layer as one dispatch, its steps
                        separated by grid barriers; off by default) on the probed (auto) or N workgroups,
                        with I/O rows a group and U loads in flight, and checks its greedy tokens against
                        the separate dispatches' (JSON "grid_decode"); --scan-chunk measures Mamba-1's
                        prefill scan with chunks of N tokens in turn (default: the scan's own choice),
                        --scan-lanes with N lanes a channel (fewer than its states: more states a lane),
                        --prefill-scan with each named scan kernel (default on a GPU: channel, a thread
                        a channel, where N ≤ 16, else parallel);
                        --split-groups the prefill matmul splitting K until N workgroups run, in turn,
                        --int8-split-groups the int8 tensor-core products likewise (default: not split);
                        --ssd-chunk Mamba-2's SSD prefill with chunks of N tokens (default: chunk_size),
                        --ssd-tile its chunk kernels' tiles (narrow 64 × 64, the default; wide 128 × 64),
                        --tc-kernel the int8 products on each named tensor-core kernel (default: the
                        device's, bench --int8-gemm's default_tc_kernel); --conv the causal conv of
                        kernel size 4 on each named kernel (default: causal-conv1d.ts DEFAULT_CONV_KERNEL);
                        --decode-xproj Mamba-1's one-token decode with x_proj a dispatch of its own
                        (separate, the default) or folded into in_proj (3 dispatches a layer);
                        --decode-loads the decode kernels' epilogue inputs loaded before the
                        weights (early, the default) or after the sums (late); --decode-depth
                        the pipelined decode's samplings in flight (default 3, or twice the batch);
                        --decode-batch its steps a command buffer (one submit each batch);
                        --dawn-features enables Dawn toggles for the whole run (e.g. disable_robustness:
                        no bounds clamps in the shaders; a measurement, never the app's setting)
  bench --int8-gemm [--prefill 2048] [--repeats 5] [--out FILE]
                        the int8 matrix product (Dawn with allow_unsafe_apis: the tensor cores where the
                        adapter offers them): correctness against the CPU, and mamba-2.8b's in_proj and
                        out_proj over --prefill tokens against the fp32 matmul (JSON to FILE)
  gpu [--unsafe]        find a WebGPU adapter, print it and what it offers (features, subgroup sizes,
                        subgroup-matrix configs; --unsafe: with Dawn's allow_unsafe_apis), and check one
                        kernel against its CPU reference
  soak --model <path> [--tokens 10000] [--every 500] [--out FILE]
                        one long generation with the live trace on through the engine, GPU and JS memory
                        sampled (run node with --expose-gc for exact heap numbers; JSON to FILE)
${PULL_USAGE}
`;

class UsageError extends Error {}

const FLAGS = new Set(['unsafe', 'greedy', 'json', 'no-ceilings', 'no-breakdown', 'ignore-eos', 'gpu', 'int8-gemm']);

/** `--name value` options (and `--flag`s) after the command; unknown options are usage errors. */
function options(args: string[], known: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const name = arg.replace(/^--/, '');
    if (!arg.startsWith('--') || !known.includes(name)) throw new UsageError(`unknown argument "${arg}"`);
    if (FLAGS.has(name)) {
      out.set(name, 'true');
      continue;
    }
    const value = args[i + 1];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${arg} needs a value`);
    out.set(name, value);
    i++;
  }
  return out;
}

/**
 * The adapter `info` plans against: the one run/trace would open (no device is made), or null with
 * why there is none (then the plan has no limits and the memory is unknown).
 */
async function planAdapter(): Promise<{ adapter: AdapterSummary | null; why?: string }> {
  try {
    const { gpu } = await findNodeGpu();
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    return adapter ? { adapter: summarizeAdapter(adapter) } : { adapter: null, why: 'no WebGPU adapter' };
  } catch (error) {
    return { adapter: null, why: error instanceof Error ? error.message : String(error) };
  }
}

async function infoCommand(args: string[]): Promise<number> {
  const opts = options(args, ['model', 'weights', 'max-tokens', 'trace-tokens', 'gpu', 'memory', 'context', 'prefill-matmul']);
  const model = opts.get('model');
  if (!model) throw new UsageError('info needs --model <path>');
  const weights = weightChoice(opts);
  const traceTokens = integerOption(opts, 'trace-tokens', 0, 0, 2 ** 24);
  const memoryGb = opts.has('memory') ? numberOption(opts, 'memory', 0, (x) => x > 0, 'a positive number of GB') : undefined;
  const files = await folderModelFiles(model);
  try {
    const inspection = withContextTokens(await inspectModel(files), contextOption(opts));
    const found = opts.has('gpu') ? await planAdapter() : { adapter: null, why: 'not asked for (--gpu)' };
    const budget = memoryGb !== undefined ? { budget: memoryGb * 1e9 } : {};
    // The plain prefill's chunk as run and the app choose it (modelChunks), unless --max-tokens.
    const maxTokens = opts.has('max-tokens') ? integerOption(opts, 'max-tokens', ANALYSIS_CHUNK, 1, 65536) : modelChunks(inspection, { weights, prefillMatmul: prefillMatmul(opts), adapter: found.adapter, ...budget }).maxTokens;
    const bare = planMemory(inspection, { weights, maxTokens });
    const trace = traceTokens > 0 ? traceMemory(inspection.config, { tokens: traceTokens, chunk: chunksOf(maxTokens).analysisTokens, sessionBytes: bare.state }) : null;
    const plan = planMemory(inspection, { weights, prefillMatmul: prefillMatmul(opts), maxTokens, trace, adapter: found.adapter, model: files.name, ...budget });
    const memory = {
      ...plan,
      summary: describeMemoryPlan(plan),
      weightsByFormat: describeWeightsByFormat(plan),
      deviceMemory: describeDeviceMemory(plan.device),
      adapter: found.adapter ? describeAdapter(found.adapter) : null,
      ...(found.why ? { adapterMissing: found.why } : {}),
      refused: refusal(plan),
    };
    process.stdout.write(`${JSON.stringify({ ...summarizeInspection(inspection), memory }, null, 2)}\n`);
    return 0;
  } finally {
    await files.close();
  }
}

/** Why loading would refuse the plan (checkMemoryPlan's message), or null. */
function refusal(plan: MemoryPlan): string | null {
  try {
    checkMemoryPlan(plan);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

async function gpuCommand(args: string[]): Promise<number> {
  const opts = options(args, ['unsafe']);
  // --unsafe: Dawn's allow_unsafe_apis, under which some adapters offer experimental features (e.g.
  // subgroup matrices: the tensor cores); the adapter's own list of them is printed.
  const { gpu, via } = await findNodeGpu(opts.has('unsafe') ? { flags: ['enable-dawn-features=allow_unsafe_apis'] } : {});
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  const info = (adapter?.info ?? {}) as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number; subgroupMatrixConfigs?: readonly Record<string, unknown>[] };
  const offered = {
    features: adapter ? [...adapter.features].sort() : [],
    subgroupMinSize: info.subgroupMinSize ?? null,
    subgroupMaxSize: info.subgroupMaxSize ?? null,
    subgroupMatrixConfigs: (info.subgroupMatrixConfigs ?? []).map((c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K })),
  };
  const ctx = await openGpu(gpu);
  const check = await runResidualRmsNormCheck(ctx, 37, 301);
  process.stdout.write(
    `${JSON.stringify({ adapter: ctx.adapter, description: describeAdapter(ctx.adapter), via, subgroupSums: ctx.subgroupSize ?? null, offered, selfTest: check }, null, 2)}\n`,
  );
  ctx.device.destroy();
  return check.passed ? 0 : 1;
}

/** A decimal number as people type it ("0.8", "-1", "1e-3"); not "", " ", "0x10" or "Infinity", which Number() also takes. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** `--name X`: a number with `ok(X)`, else a usage error saying what it must be. */
function numberOption(opts: Map<string, string>, name: string, fallback: number, ok: (x: number) => boolean = () => true, what = 'a number'): number {
  const raw = opts.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!DECIMAL.test(raw) || !Number.isFinite(value) || !ok(value)) throw new UsageError(`--${name} must be ${what}, got "${raw}"`);
  return value;
}

/** `--name N`: a whole number in [min, max] written in digits. */
function integerOption(opts: Map<string, string>, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = opts.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !(value >= min && value <= max)) {
    throw new UsageError(`--${name} must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`}, got "${raw}"`);
  }
  return value;
}

/** --input-ids: comma-separated token ids (digits only; no empty items, so "1,,2" is not [1, 0, 2]). */
function parseInputIds(raw: string): number[] {
  const items = raw.split(',').map((x) => x.trim());
  const ids = items.map(Number);
  if (items.some((x) => !/^\d+$/.test(x)) || ids.some((id) => !Number.isSafeInteger(id))) {
    throw new UsageError(`--input-ids must be comma-separated token ids (whole numbers ≥ 0), got "${raw}"`);
  }
  return ids;
}

/** The prompt as given: checked before the model is opened (so a usage error costs no GPU). */
type PromptSpec = { ids: number[] } | { text: string };

function promptSpec(opts: Map<string, string>): PromptSpec {
  const prompt = opts.get('prompt');
  const raw = opts.get('input-ids');
  if ((prompt === undefined) === (raw === undefined)) throw new UsageError('give exactly one of --prompt and --input-ids');
  return raw !== undefined ? { ids: parseInputIds(raw) } : { text: prompt as string };
}

function promptIds(spec: PromptSpec, m: RunnableModel): number[] {
  if ('ids' in spec) {
    const V = m.inspection.config.vocabSize;
    const bad = spec.ids.find((id) => id >= V);
    if (bad !== undefined) throw new UsageError(`token id ${bad} is outside the vocabulary 0..${V - 1}`);
    return spec.ids;
  }
  if (!m.tokenizer) throw new UsageError(`${m.name} has no tokenizer (no tokenizer.json, nor one it can use in a GGUF file): give --input-ids instead of --prompt`);
  const ids = m.tokenizer.encode(spec.text);
  if (ids.length === 0) throw new UsageError('the prompt is empty');
  return ids;
}

/** run's sampling options, each checked as generate and the sampler will check it (app/kernels/sample.ts checkSampleSettings). */
function generateOptions(opts: Map<string, string>) {
  const greedy = opts.has('greedy');
  return {
    maxTokens: integerOption(opts, 'max-tokens', 200, 0, 2 ** 31 - 1),
    temperature: greedy ? 0 : numberOption(opts, 'temperature', 0.8, (x) => x >= 0, 'a number ≥ 0'),
    topK: greedy ? 0 : integerOption(opts, 'top-k', 0, 0, 2 ** 32 - 1),
    topP: greedy ? 1 : numberOption(opts, 'top-p', 1, (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
    repetitionPenalty: numberOption(opts, 'repetition-penalty', 1, (x) => x > 0, 'a number > 0'),
    seed: integerOption(opts, 'seed', Date.now() % 2 ** 31, 0, 2 ** 32 - 1),
    ...(opts.get('stop') !== undefined ? { stopStrings: [opts.get('stop') as string] } : {}),
  };
}

const RUN_OPTIONS = ['model', 'prompt', 'input-ids', 'max-tokens', 'greedy', 'temperature', 'top-k', 'top-p', 'repetition-penalty', 'seed', 'stop', 'ignore-eos', 'weights', 'json', 'context', 'prefill-matmul'];

/** --context N: a hybrid's KV caches sized for N tokens (undefined: the config's context). */
function contextOption(opts: Map<string, string>): number | undefined {
  return opts.has('context') ? integerOption(opts, 'context', 0, 1, MAX_CONTEXT_TOKENS) : undefined;
}

type MatvecTuning = NonNullable<KernelTuning['matvec']>;

/** One --matvec item: [FORMAT:][TxRxU][@G]. */
function parseMatvecItem(item: string): MatvecTuning {
  const m = /^(?:([a-z0-9_]+):)?(?:(\d+)x(\d+)x(\d+))?(?:@(\d+))?$/.exec(item);
  if (!m || (m[2] === undefined && m[5] === undefined)) throw new UsageError(`--matvec takes items like 32x2x4, q4_k:32x4x2 or q4_k:@512 (format: threads×rows×unroll @ workgroups), got "${item}"`);
  if (m[1] !== undefined && !(WEIGHT_FORMATS as readonly string[]).includes(m[1])) throw new UsageError(`--matvec: unknown storage format "${m[1]}" in "${item}" (known: ${WEIGHT_FORMATS.join(', ')})`);
  const tuning: MatvecTuning = {};
  if (m[1] !== undefined) tuning.format = m[1];
  if (m[2] !== undefined) Object.assign(tuning, { threadsPerRow: Number(m[2]), rows: Number(m[3]), unroll: Number(m[4]) });
  if (m[5] !== undefined) {
    tuning.groups = Number(m[5]);
    if (tuning.groups < 1) throw new UsageError(`--matvec: the workgroups after @ must be ≥ 1, got "${item}"`);
  }
  return tuning;
}

/** The item as --matvec takes it (the bench JSON's `matvec`). */
function describeMatvecItem(t: MatvecTuning): string {
  return `${t.format ? `${t.format}:` : ''}${t.threadsPerRow !== undefined ? `${t.threadsPerRow}x${t.rows}x${t.unroll}` : ''}${t.groups !== undefined ? `@${t.groups}` : ''}`;
}

/** --prefill-matmul items (run, info: one; bench: a list): how prefill chunks multiply (default fp32). */
function prefillMatmuls(opts: Map<string, string>): PrefillMatmul[] {
  const items = (opts.get('prefill-matmul') ?? 'fp32').split(',');
  for (const item of items) if (!(PREFILL_MATMULS as readonly string[]).includes(item)) throw new UsageError(`--prefill-matmul takes ${PREFILL_MATMULS.join(', ')}, got "${item}"`);
  return items as PrefillMatmul[];
}

function prefillMatmul(opts: Map<string, string>): PrefillMatmul {
  const items = prefillMatmuls(opts);
  if (items.length !== 1) throw new UsageError(`--prefill-matmul takes one of ${PREFILL_MATMULS.join(', ')} here, got "${opts.get('prefill-matmul')}"`);
  return items[0] as PrefillMatmul;
}

/** --weights of run and trace: the weights on the GPU (default auto: the checkpoint's own precision). */
function weightChoice(opts: Map<string, string>): WeightChoice {
  const raw = opts.get('weights') ?? 'auto';
  if (!(WEIGHT_CHOICES as readonly string[]).includes(raw)) throw new UsageError(`--weights takes ${WEIGHT_CHOICES.join(', ')}, got "${raw}"`);
  return raw as WeightChoice;
}

async function runCommand(args: string[]): Promise<number> {
  const opts = options(args, RUN_OPTIONS);
  const path = opts.get('model');
  if (!path) throw new UsageError('run needs --model <path>');
  const prompt = promptSpec(opts);
  const settings = generateOptions(opts);
  const m = await openRunnableModel(path, { weights: weightChoice(opts), contextTokens: contextOption(opts), prefillMatmul: prefillMatmul(opts) });
  for (const warning of m.warnings) process.stderr.write(`warning: ${warning}\n`);
  try {
    const ids = promptIds(prompt, m);
    const json = opts.has('json');
    const session = new Session(m.ctx, m.model, undefined, { prefillChunk: m.model.maxTokens });
    // Token ids in and out (--json, no --stop): the tokenizer is never built.
    const decoder = json && !settings.stopStrings?.length ? undefined : m.tokenizer?.decoder();
    const eos = m.inspection.eosTokenIds ?? [];
    const result = await generate(
      m.ctx,
      session,
      ids,
      { ...settings, ...(opts.has('ignore-eos') || eos.length === 0 ? {} : { eosIds: new Set(eos) }) },
      json ? undefined : (token) => process.stdout.write(token.text),
      decoder,
      json ? undefined : (tail) => process.stdout.write(tail),
    );
    session.destroy();
    if (json) process.stdout.write(`${JSON.stringify({ ids: result.ids })}\n`);
    else {
      if (!decoder) process.stdout.write(result.ids.join(' '));
      process.stderr.write(`\n[${result.ids.length} tokens, ${result.tokensPerSecond.toFixed(1)} tokens/s, prefill ${(result.prefillSeconds * 1000).toFixed(0)} ms, stop: ${result.stopReason === 'end-of-text' ? 'end of text' : result.stopReason}]\n`);
    }
    return 0;
  } finally {
    m.close();
  }
}

async function traceCommand(args: string[]): Promise<number> {
  const opts = options(args, ['model', 'prompt', 'input-ids', 'out', 'weights', 'context']);
  const path = opts.get('model');
  const out = opts.get('out');
  if (!path || !out) throw new UsageError('trace needs --model <path> and --out <file>');
  const prompt = promptSpec(opts);
  const m = await openRunnableModel(path, { weights: weightChoice(opts), contextTokens: contextOption(opts), prefillMatmul: prefillMatmul(opts) });
  for (const warning of m.warnings) process.stderr.write(`warning: ${warning}\n`);
  try {
    const ids = promptIds(prompt, m);
    // The app's trace path (app/analysis/trace.ts), keeping the logits [T, V] for the file too.
    const trace = await tracePrompt(m.ctx, m, ids, { traceId: 'cli', modelId: m.name, keepLogits: true });
    await writeFile(out, promptTraceFile(trace, 'text' in prompt ? { text: prompt.text } : { ids }));
    process.stderr.write(`wrote ${out}: ${ids.length} tokens × ${trace.result.layers.length} layers\n`);
    return 0;
  } finally {
    m.close();
  }
}

/** Every combination of the axes' values, the first axis outermost (the order nested loops over them would give). */
function combinations<T extends Record<string, readonly unknown[]>>(axes: T): { [K in keyof T]: T[K][number] }[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [key, values] of Object.entries(axes)) out = out.flatMap((o) => values.map((v) => ({ ...o, [key]: v })));
  return out as { [K in keyof T]: T[K][number] }[];
}

/** The entries of `o` that are set (not undefined, null or false): a sweep's forced settings, without the ones left to the ops. */
function setEntries<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null && v !== false)) as Partial<T>;
}

/** The process's JS memory (heap + array buffers), after a collection when node runs with --expose-gc. */
function jsMemory(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function benchCommand(args: string[]): Promise<number> {
  const opts = options(args, ['shape', 'model', 'prefill', 'decode', 'repeats', 'warmup', 'chunk', 'weights', 'out', 'no-ceilings', 'no-breakdown', 'trace', 'matvec', 'trail-piece', 'int8-gemm', 'prefill-matmul', 'grid', 'scan-chunk', 'scan-lanes', 'prefill-scan', 'split-groups', 'int8-split-groups', 'ssd-chunk', 'ssd-tile', 'tc-kernel', 'conv', 'decode-xproj', 'decode-loads', 'decode-depth', 'decode-batch', 'dawn-features']);
  const dawnFeatures = opts.has('dawn-features') ? (opts.get('dawn-features') ?? '').split(',') : [];
  if (dawnFeatures.some((n) => !DAWN_TOGGLE_NAME.test(n))) throw new UsageError(`--dawn-features takes Dawn toggle names (e.g. disable_robustness), got "${opts.get('dawn-features')}"`);
  if (opts.has('int8-gemm')) {
    const { gpu, via } = await findNodeGpu({ flags: benchDawnFlags(true, dawnFeatures) });
    const ctx = await openGpu(gpu);
    const log = (line: string) => process.stderr.write(`${line}\n`);
    log(`bench --int8-gemm on ${describeAdapter(ctx.adapter)} (${via})`);
    const result = { date: new Date().toISOString(), adapter: ctx.adapter, int8_gemm: await benchInt8Gemm(ctx, { repeats: integerOption(opts, 'repeats', 5, 1), tokens: integerOption(opts, 'prefill', 2048, 1) }, log) };
    const json = `${JSON.stringify(result, null, 2)}\n`;
    const out = opts.get('out') ?? `bench/out/int8-${result.date.replace(/[:.]/g, '-')}.json`;
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, json);
    process.stderr.write(`wrote ${out}\n`);
    ctx.device.destroy();
    return Object.values(result.int8_gemm.correctness).every((c) => c.pass) ? 0 : 1;
  }
  // --matvec [FORMAT:][TxRxU][@G][,…]: the decode matrix-vector kernel's settings to measure in turn
  // (threads per row, rows per group of threads, loads in flight, at most G workgroups;
  // app/kernels/norm-matvec.ts), for the matrices stored in FORMAT only when it is given, each
  // with every --weights.
  // --grid off|auto|N[,…]: the decode with separate dispatches (off, the default), with the grid
  // decode (one dispatch a layer, app/kernels/layer-grid.ts) on as many workgroups as the adapter
  // probe found room for (auto: app/gpu/grid-sync.ts), or on N (a power of two), measured in turn.
  const gridRaw = opts.get('grid');
  // N:IxOxU also sets the matrix-vector shape (in_proj rows, out_proj rows, loads in flight).
  type GridSetting = { grid: number | false | 'auto'; shape?: { inRows: number; outRows: number; unroll: number } };
  const gridSettings: GridSetting[] = gridRaw
    ? gridRaw.split(',').map((g) => {
        if (g === 'off') return { grid: false };
        if (g === 'auto') return { grid: 'auto' };
        const m = /^(\d+)(?::(\d+)x(\d+)x(\d+))?$/.exec(g);
        const n = Number(m?.[1]);
        if (!m || n < 1 || n > 65536 || (n & (n - 1)) !== 0) throw new UsageError(`--grid takes off, auto or N[:IxOxU] with N a power of two (at most 65536), got "${g}"`);
        if (m[2] === undefined) return { grid: n };
        const shape = { inRows: Number(m[2]), outRows: Number(m[3]), unroll: Number(m[4]) };
        const fits = (rows: number) => gridMatvecShapeFits({ rows, unroll: shape.unroll });
        if (!fits(shape.inRows) || !fits(shape.outRows)) throw new UsageError(`--grid: rows a group (I, O) take 1..8 and loads in flight (U) at least 1, with rows × U ≤ 16, got "${g}"`);
        return { grid: n, shape };
      })
    : [{ grid: false }];
  const matvecRaw = opts.get('matvec');
  const matvecShapes = matvecRaw ? matvecRaw.split(',').map(parseMatvecItem) : [undefined];
  const traceTokens = opts.has('trace') ? integerOption(opts, 'trace', 131072, 1) : 0;
  const modelPath = opts.get('model');
  const raw = opts.get('weights') ?? 'f32';
  // Random weights take every storage format; a checkpoint the loader's choices.
  const allowed: readonly string[] = modelPath ? WEIGHT_CHOICES : BENCH_WEIGHTS;
  const formats = raw === 'all' && !modelPath ? [...BENCH_WEIGHTS] : raw.split(',');
  for (const f of formats) {
    if (!allowed.includes(f)) throw new UsageError(`--weights takes ${modelPath ? '' : "'all' or "}a list of ${allowed.join(', ')}${modelPath ? ' (with --model)' : ''}, got "${f}"`);
  }
  const list = (name: string, fallback: number[]) => {
    const raw = opts.get(name);
    if (!raw) return fallback;
    const items = raw.split(',');
    const values = items.map(Number);
    if (items.some((x) => !/^\d+$/.test(x)) || values.some((v) => !Number.isSafeInteger(v) || v < 1)) throw new UsageError(`--${name} takes positive integers, got "${raw}"`);
    return values;
  };
  // Dawn rounds timestamps (to 64 µs on some drivers) unless told not to: the per-kernel
  // breakdown needs them exact.
  const prefillTokens = list('prefill', [128, 512, 2048, 8192]);
  const trailPieces = opts.has('trail-piece') ? list('trail-piece', []) : [];
  // A tuning list measured in turn: its values, each within `takes` (what it takes when a value is
  // out of it, else null), or [undefined] (the op's own choice) when the flag is absent.
  const sweepList = (name: string, takes: (n: number) => string | null = () => null): (number | undefined)[] => {
    if (!opts.has(name)) return [undefined];
    const values = list(name, []);
    for (const n of values) {
      const why = takes(n);
      if (why) throw new UsageError(`--${name} takes ${why}, got ${n}`);
    }
    return values;
  };
  // A list of kernel names measured in turn (each one of `names`), or [undefined] (the default) when the flag is absent.
  const nameList = (name: string, names: readonly string[]): (string | undefined)[] => {
    if (!opts.has(name)) return [undefined];
    const values = (opts.get(name) ?? '').split(',');
    if (values.some((k) => !names.includes(k))) throw new UsageError(`--${name} takes a list of ${names.join(', ')}, got "${opts.get(name)}"`);
    return values;
  };
  // --scan-chunk: Mamba-1's prefill scan with chunks of N tokens (app/kernels/selective-scan.ts).
  const scanChunks = sweepList('scan-chunk', (c) => (c < DEFAULT_CHUNK_LENGTH || c > MAX_CHUNK_LENGTH ? `${DEFAULT_CHUNK_LENGTH}..${MAX_CHUNK_LENGTH} tokens` : null));
  // --scan-lanes: Mamba-1's parallel prefill scan with N lanes a channel (scanStateLanes).
  const scanLaneList = sweepList('scan-lanes', (n) => (n >= 1 && n <= 32 && (n & (n - 1)) === 0 ? null : 'powers of two from 1 to 32'));
  // --prefill-scan: Mamba-1's prefill scan kernel in turn (app/kernels/selective-scan.ts prefillScanKind).
  const prefillScans = nameList('prefill-scan', PREFILL_SCAN_KINDS);
  // --ssd-chunk: Mamba-2's SSD prefill with chunks of N tokens instead of the config's chunk_size.
  const ssdChunks = sweepList('ssd-chunk', (n) => (n < 16 || n > 1024 ? '16..1024 tokens' : null));
  // --ssd-tile: Mamba-2's SSD chunk kernels in each named tile shape in turn (app/kernels/ssd.ts).
  const ssdTiles = nameList('ssd-tile', SSD_TILE_NAMES);
  // --split-groups: the prefill matmul's split-K target (workgroups; app/kernels/matmul.ts).
  const splitTargets = sweepList('split-groups');
  // --int8-split-groups: the int8 tensor-core products split K until N workgroups run (int8SplitCount).
  const int8SplitTargets = sweepList('int8-split-groups', (n) => (n > 256 ? "1..256 workgroups (the partials of a larger target outgrow the model's split-K scratch)" : null));
  // --tc-kernel: the int8 products on each named tensor-core kernel in turn (default: defaultTcKernel).
  const tcKernels = nameList('tc-kernel', Object.keys(TC_KERNELS));
  // --conv: the causal conv (kernel size 4) on each named kernel in turn (default: DEFAULT_CONV_KERNEL).
  const convKernels = nameList('conv', CONV_KERNEL_NAMES);
  // --decode-xproj: Mamba-1's decode with x_proj separate or folded into in_proj (app/arch/mamba1/mixer.ts).
  const decodeXProjs = nameList('decode-xproj', DECODE_XPROJ_KINDS);
  // --decode-loads: the decode kernels' early loads on (early) or off (late) (tuning.decodeLoads).
  const decodeLoads = nameList('decode-loads', DECODE_LOADS);
  // --decode-depth: the pipelined decode's samplings in flight (tuning.decodeDepth; generate.ts PIPELINE_DEPTH).
  const decodeDepths = sweepList('decode-depth', (n) => (n < 2 || n > 16 ? '2..16 samplings' : null));
  // --decode-batch: the pipelined decode's steps a command buffer (tuning.decodeBatch; generate.ts DECODE_BATCH).
  const decodeBatches = sweepList('decode-batch', (n) => (n > 8 ? '1..8 steps' : null));
  const settings = {
    prefillTokens,
    decodeTokens: integerOption(opts, 'decode', 256, 0),
    repeats: integerOption(opts, 'repeats', 5, 1),
    warmup: integerOption(opts, 'warmup', 1, 0),
    ...(opts.has('chunk') ? { chunk: integerOption(opts, 'chunk', PREFILL_CHUNK, 1) } : {}),
    ceilings: !opts.has('no-ceilings'),
    breakdown: !opts.has('no-breakdown'),
  };
  // int8 prefill: Dawn offers the tensor cores (subgroup matrices) only with its unsafe APIs.
  const matmuls = prefillMatmuls(opts);
  const { gpu, via } = await findNodeGpu({ flags: benchDawnFlags(matmuls.includes('int8'), dawnFeatures) });
  if (dawnFeatures.length) process.stderr.write(`Dawn toggles asked for: ${dawnFeatures.join(', ')}\n`);
  const ctx = await openGpu(gpu);
  process.stderr.write(`bench on ${describeAdapter(ctx.adapter)} (${via}); subgroup sums: ${ctx.subgroupSize ? `subgroups of ${ctx.subgroupSize}` : 'off (barrier tree)'}\n`);
  if (matmuls.includes('int8') && usablePrefillMatmul(ctx, 'int8').matmul !== 'int8') {
    ctx.device.destroy();
    throw new UsageError(`--prefill-matmul int8 needs int8 tensor cores through WebGPU (the subgroup-matrix feature), which ${describeAdapter(ctx.adapter)} does not offer`);
  }
  if (gridSettings.some((g) => g.grid === 'auto')) {
    ctx.gridWorkgroups = await probeGridWorkgroups(ctx.device, ctx.adapter.software);
    process.stderr.write(`grid decode: ${ctx.gridWorkgroups ?? 'no'} workgroups from the co-residency probe\n`);
  }
  const results: BenchResult[] = [];
  const sweep = combinations({ format: formats, matvec: matvecShapes, matmul: matmuls, grid: gridSettings, scanChunk: scanChunks, scanLanes: scanLaneList, prefillScan: prefillScans, ssdChunk: ssdChunks, ssdTile: ssdTiles, splitGroups: splitTargets, int8SplitGroups: int8SplitTargets, tcKernel: tcKernels, conv: convKernels, decodeXProj: decodeXProjs, decodeLoad: decodeLoads, decodeDepth: decodeDepths, decodeBatch: decodeBatches });
  for (const { format, matvec, matmul, grid: { grid, shape: gridShape }, scanChunk, scanLanes, prefillScan, ssdChunk, ssdTile, splitGroups, int8SplitGroups, tcKernel, conv, decodeXProj, decodeLoad, decodeDepth, decodeBatch } of sweep) {
    const tuning: KernelTuning = setEntries({ matvec, gridDecode: grid, gridShape, scanChunk, scanLanes, prefillScan: prefillScan as PrefillScanKind | undefined, ssdChunk, ssdTile: ssdTile as SsdTileName | undefined, splitGroups, int8SplitGroups, int8TcKernel: tcKernel as TcKernel | undefined, convKernel: conv as ConvKernelName | undefined, decodeXProj: decodeXProj as DecodeXProjKind | undefined, decodeLoads: decodeLoad as DecodeLoads | undefined, decodeDepth, decodeBatch });
    ctx.tuning = Object.keys(tuning).length ? tuning : undefined;
    let name: string;
    let prepared;
    let choice: WeightChoice;
    if (modelPath) {
      const files = await folderModelFiles(modelPath);
      const inspection = await inspectModel(files);
      choice = format as WeightChoice;
      prepared = { inspection, weights: await loadWeights(ctx, files, inspection, { weightFormat: choice }) };
      await files.close();
      name = files.name;
    } else {
      name = opts.get('shape') ?? 'mamba-130m';
      if (!SHAPES[name]) throw new UsageError(`unknown --shape "${name}" (known: ${Object.keys(SHAPES).join(', ')})`);
      choice = format === 'f32' ? 'f32' : 'auto';
      prepared = randomWeights(ctx, shapeConfig(name), 1, format as BenchWeights);
    }
    process.stderr.write(`weights: ${format} (${describeWeightFormats(prepared.weights.formats ?? new Map(), prepared.inspection)} on the GPU)\n`);
    const log = (line: string) => process.stderr.write(`${line}\n`);
    process.stderr.write(`prefill products: ${matmul}\n`);
    const result = await runBench(ctx, name, prepared.inspection, prepared.weights, { ...settings, weights: format as BenchWeights | WeightChoice, weightChoice: choice, prefillMatmul: matmul, ...(traceTokens ? { keepModel: true } : {}) }, log);
    if (traceTokens && result.model_ref) {
      result.trace = await benchTrace(ctx, result.model_ref, prepared.weights, traceTokens, { decodeTokens: settings.decodeTokens, repeats: settings.repeats, memory: jsMemory, ...(trailPieces.length ? { trailPieces } : {}) }, log);
      result.model_ref.destroy();
    }
    delete result.model_ref;
    result.subgroup_size = ctx.subgroupSize ?? null;
    if (matvec) result.matvec = describeMatvecItem(matvec);
    result.grid_setting = grid === false ? 'off' : gridShape ? `${grid}:${gridShape.inRows}x${gridShape.outRows}x${gridShape.unroll}` : grid;
    result.grid_workgroups_found = ctx.gridWorkgroups ?? null;
    if (dawnFeatures.length) result.dawn_features = dawnFeatures;
    Object.assign(result, setEntries({ scan_chunk: scanChunk, scan_lanes: scanLanes, prefill_scan: prefillScan, ssd_chunk: ssdChunk, ssd_tile: ssdTile, split_groups: splitGroups, int8_split_groups: int8SplitGroups, tc_kernel: tcKernel, conv_kernel: conv, decode_xproj: decodeXProj, decode_loads: decodeLoad, decode_depth: decodeDepth, decode_batch: decodeBatch }));
    results.push(result);
    prepared.weights.destroy();
  }
  if (results.length > 1) {
    process.stderr.write(`decode: ${results.map((r) => `${r.dtype}${r.matvec ? ` ${r.matvec}` : ''}${gridSettings.length > 1 ? ` grid ${r.grid_setting}` : ''}${r.prefill_matmul === 'int8' ? ' (int8 prefill)' : ''}${r.decode_xproj ? ` x_proj ${r.decode_xproj}` : ''} ${r.decode_tok_s.toFixed(1)}`).join(', ')} tokens/s\n`);
  }
  const result = results[0] as BenchResult;
  const json = `${JSON.stringify(results.length > 1 ? results : result, null, 2)}\n`;
  const out = opts.get('out') ?? `bench/out/${result.date.replace(/[:.]/g, '-')}.json`;
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, json);
  process.stdout.write(json);
  process.stderr.write(`wrote ${out}\n`);
  ctx.device.destroy();
  return 0;
}

async function soakCommand(args: string[]): Promise<number> {
  const opts = options(args, ['model', 'tokens', 'every', 'out']);
  const model = opts.get('model');
  if (!model) throw new UsageError('soak needs --model <path>');
  const tokens = numberOption(opts, 'tokens', 10_000);
  const every = numberOption(opts, 'every', 500);
  const { gpu, via } = await findNodeGpu();
  process.stderr.write(`soak on ${via}\n`);
  const result = await runSoak(gpu, model, { tokens, every, log: (line) => process.stderr.write(`${line}\n`) });
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const out = opts.get('out') ?? `bench/out/soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, json);
  process.stderr.write(
    `growth after warm-up: GPU ${result.gpuBytesPerToken.toFixed(1)} B/token, JS heap ${result.heapBytesPerToken.toFixed(0)} B/token (the live trace keeps ${result.traceBytesPerToken} B/token by design); wrote ${out}\n`,
  );
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'info':
      return infoCommand(rest);
    case 'run':
      return runCommand(rest);
    case 'trace':
      return traceCommand(rest);
    case 'bench':
      return benchCommand(rest);
    case 'gpu':
      return gpuCommand(rest);
    case 'soak':
      return soakCommand(rest);
    case 'pull':
      return pullCommand(rest, {
        env: process.env,
        stdout: (t) => process.stdout.write(t),
        stderr: (t) => process.stderr.write(t),
        tty: process.stderr.isTTY === true,
      });
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command ? 0 : 2;
    default:
      process.stderr.write(`error: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

/**
 * Resolves once everything written to the stream so far has been handed to the OS. Writes to a
 * pipe are asynchronous: process.exit right after a large write (the `info` JSON of a 64-layer
 * model is over 64 KiB, a pipe's buffer) would cut the output short.
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0 || stream.destroyed) resolve();
    else stream.write('', () => resolve());
  });
}

// A reader that went away (`| head`) is no error of ours: what was left to write is dropped and
// the exit below proceeds (the write's callback gets the error).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

/** Exits once stdout and stderr are flushed (the GPU's handles would keep the process alive otherwise). */
async function exit(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

main(process.argv.slice(2)).then(
  (code) => exit(code),
  (error: unknown) => {
    // One line, no stack trace: the file and what is wrong with it (or what was asked wrongly).
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message.split('\n')[0]}\n`);
    if (error instanceof UsageError) process.stderr.write(USAGE);
    else if (!(error instanceof ModelFileError)) process.stderr.write('(not a model-file error: please report it)\n');
    return exit(2);
  },
);
