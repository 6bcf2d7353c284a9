/**
 * The fuzz suite's common ground for model files (test/unit/fuzz-*.test.ts): how many cases a
 * property runs, the seed, the outcome every case must have, and the per-file count it prints.
 *
 * Every case must end in one of two ways, within CASE_BUDGET: a valid inspection (or header), or a
 * clean ModelFileError naming one of the model's files, with a message of bounded length.
 *
 *   FUZZ_RUNS  cases per property (default 1000: with three properties per file the model
 *              formats give ~9,000 cases, a minute or less on two cores); `npm run test:fuzz`
 *              runs 20× that.
 *   FUZZ_SEED  fast-check's seed (default: a fresh one, printed, so a failure can be replayed).
 *   FUZZ_VERBOSE  also print how often each kind of refusal was reached.
 */
import fc from 'fast-check';
import { afterAll, expect } from 'vitest';
import { inspectModel, summarizeInspection, type ModelInspection } from '../../app/arch/inspect';
import { ModelFileError, MAX_PROBLEM_CHARS } from '../../app/formats/errors';
import { memoryModelFiles } from './memory-model';
import { measure, MiB } from './within-budget';

const positive = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
};

export const FUZZ_RUNS = positive('FUZZ_RUNS', 1000);
export const FUZZ_SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);

/**
 * What one case may cost. The cases are tiny files: they take about a millisecond; a case that
 * loops over a hostile size or allocates by it takes seconds and gigabytes (1e7 layers: 51 s, 4.7 GB).
 * The heap is measured without forcing a collection (one per case would cost more than the case).
 */
export const CASE_BUDGET = { ms: 1000, heap: 64 * MiB };

/** fast-check parameters for a property: FUZZ_RUNS cases from FUZZ_SEED. */
export const runs = <T>(): fc.Parameters<T> => ({ numRuns: FUZZ_RUNS, seed: FUZZ_SEED });

/** Vitest's limit for one property (a case takes a few ms; shrinking a failure takes longer). */
export const PROPERTY_TIMEOUT_MS = 120_000 + FUZZ_RUNS * 100;

/** Runs a property for FUZZ_RUNS cases; a failure is counted in the file's line, then thrown. */
export async function checkProperty<T>(stats: FuzzStats, property: fc.IAsyncProperty<T>): Promise<void> {
  try {
    await fc.assert(property, runs<T>());
  } catch (error) {
    stats.failures++;
    throw error;
  }
}

export interface FuzzStats {
  cases: number;
  failures: number;
  valid: number;
  refused: number;
  /** Counts each refusal kind by its message with numbers and names blanked (what the fuzzer reached). */
  kinds: Map<string, number>;
}

/** Per-file counters, printed after the file's tests: "fuzz <name>: N cases (…), 0 failing properties, seed S, T s". */
export function fuzzStats(name: string): FuzzStats {
  const stats: FuzzStats = { cases: 0, failures: 0, valid: 0, refused: 0, kinds: new Map() };
  const started = performance.now();
  afterAll(() => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(
      `fuzz ${name}: ${stats.cases} cases (${stats.valid} valid, ${stats.refused} clean ModelFileErrors of ${stats.kinds.size} kinds), ` +
        `${stats.failures} failing properties, FUZZ_RUNS=${FUZZ_RUNS}, FUZZ_SEED=${FUZZ_SEED}, ${seconds} s\n`,
    );
    if (process.env.FUZZ_VERBOSE) {
      const kinds = [...stats.kinds].sort((a, b) => b[1] - a[1]);
      process.stdout.write(`${kinds.map(([k, n]) => `  ${String(n).padStart(6)}  ${k}`).join('\n')}\n`);
    }
  });
  return stats;
}

const kindOf = (problem: string) =>
  problem
    .replace(/"[^"]*"/g, '"…"')
    .replace(/-?\d[\d.e+-]*/g, 'N')
    .slice(0, 80);

/**
 * Checks one case's outcome: `error` is a ModelFileError naming one of `files` (as `name(file)`
 * gives it), with a bounded message; or there is a value. Counts it in `stats`.
 */
export function expectCleanOutcome(
  stats: FuzzStats,
  outcome: { value?: unknown; error?: unknown; ms: number; heapGrowth: number },
  files: readonly string[],
): void {
  stats.cases++;
  expect(outcome.ms, 'time budget of one case').toBeLessThan(CASE_BUDGET.ms);
  expect(outcome.heapGrowth, 'heap budget of one case').toBeLessThan(CASE_BUDGET.heap);
  if (outcome.error === undefined) {
    stats.valid++;
    return;
  }
  if (!(outcome.error instanceof ModelFileError)) throw outcome.error;
  expect(files).toContain(outcome.error.file);
  expect(outcome.error.problem.length).toBeLessThanOrEqual(MAX_PROBLEM_CHARS + 40);
  stats.refused++;
  const kind = kindOf(outcome.error.problem);
  stats.kinds.set(kind, (stats.kinds.get(kind) ?? 0) + 1);
}

/**
 * Inspects the model made of `files` (in memory, under the folder name "m") and checks the
 * outcome; a valid inspection must also summarize to JSON (what `info` prints).
 */
export async function inspectCase(stats: FuzzStats, files: Record<string, Uint8Array | string>): Promise<ModelInspection | undefined> {
  const outcome = await measure(() => inspectModel(memoryModelFiles('m', files)));
  const names = Object.keys(files);
  // A file of the model, the folder, or checkWeights' "folder/weights file(s)".
  const allowed = ['m', ...names.map((n) => `m/${n}`), `m/${names.filter((n) => n.endsWith('.safetensors')).sort().join(', ')}`];
  expectCleanOutcome(stats, outcome, allowed);
  if (outcome.value) {
    const summary = JSON.stringify(summarizeInspection(outcome.value));
    expect(summary.length).toBeGreaterThan(0);
  }
  return outcome.value;
}

// ---------------------------------------------------------------------------------------------
// Hostile JSON values

/** A value serialized as `depth` nested arrays or objects (too deep to build as a JS value and stringify). */
export class Deep {
  constructor(
    readonly depth: number,
    readonly kind: 'array' | 'object',
  ) {}
}

/** JSON as Python's json module writes it: NaN and ±Infinity as bare words; Deep as its nesting. */
export function pythonJson(value: unknown): string {
  if (value instanceof Deep) {
    return value.kind === 'array' ? `${'['.repeat(value.depth)}${']'.repeat(value.depth)}` : `${'{"a":'.repeat(value.depth)}1${'}'.repeat(value.depth)}`;
  }
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : value === Infinity ? 'Infinity' : value === -Infinity ? '-Infinity' : JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(',')}]`;
  if (value && typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${pythonJson(v)}`).join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/** Numbers a size field should never take, and some it may. */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -1, 1, 2, 2.5, 0.5, 1e7, 1e9, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e308, -1e308, NaN, Infinity, -Infinity, -0, 5e-324, 4096, 4097, 65_536, 262_145),
  fc.integer(),
  fc.integer({ min: 0, max: 300 }),
  fc.double(),
);

/** Any JSON value a hostile config could hold where a number is expected. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileNumber },
  fc.constantFrom('64', 'auto', 'Mamba1', 'Mamba2', 'mamba', 'mamba2', '', 'Infinity', 'NaN', '1e308', '__float__'),
  fc.string({ maxLength: 12 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(hostileNumber, { maxLength: 4 }),
  fc.record({ __float__: fc.constantFrom('Infinity', '-Infinity', 'NaN', 'x', '1e999') }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: 2, max: 200_000 }).chain((depth) => fc.constantFrom(new Deep(depth, 'array'), new Deep(depth, 'object'))),
  fc.integer({ min: 1000, max: 200_000 }).map((n) => 'x'.repeat(n)),
  fc.integer({ min: 1000, max: 100_000 }).map((n) => new Array<number>(n).fill(1)),
);

// ---------------------------------------------------------------------------------------------
// Valid tiny configs, in every convention

const divisorOf = (n: number) => fc.constantFrom(...Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0));

/** A valid small Mamba or Mamba-2 config.json (transformers or mamba_ssm), as a JS object (Infinity allowed: write it with pythonJson). */
export const validConfig: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  // transformers Mamba
  fc.record({
    model_type: fc.constant('mamba'),
    hidden_size: fc.integer({ min: 1, max: 12 }),
    num_hidden_layers: fc.integer({ min: 1, max: 3 }),
    vocab_size: fc.integer({ min: 1, max: 40 }),
    state_size: fc.integer({ min: 1, max: 8 }),
    expand: fc.constantFrom(1, 2, 3),
    conv_kernel: fc.integer({ min: 2, max: 8 }),
    time_step_rank: fc.oneof(fc.constant('auto'), fc.integer({ min: 1, max: 6 })),
    use_bias: fc.boolean(),
    use_conv_bias: fc.boolean(),
    tie_word_embeddings: fc.boolean(),
    layer_norm_epsilon: fc.constantFrom(1e-5, 1e-6, 0.5, 1),
  }),
  // transformers Mamba-2: d_inner = 2 × hidden_size = heads × head_dim
  fc.integer({ min: 1, max: 8 }).chain((D) =>
    divisorOf(2 * D).chain((H) =>
      fc.record({
        model_type: fc.constant('mamba2'),
        hidden_size: fc.constant(D),
        num_hidden_layers: fc.integer({ min: 1, max: 3 }),
        vocab_size: fc.integer({ min: 1, max: 40 }),
        num_heads: fc.constant(H),
        head_dim: fc.constant((2 * D) / H),
        n_groups: divisorOf(H),
        state_size: fc.integer({ min: 1, max: 8 }),
        conv_kernel: fc.integer({ min: 2, max: 8 }),
        chunk_size: fc.integer({ min: 1, max: 300 }),
        time_step_limit: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(1, 10, Infinity)),
        use_bias: fc.boolean(),
        tie_word_embeddings: fc.boolean(),
      }),
    ),
  ),
  // mamba_ssm Mamba-1
  fc.record({
    d_model: fc.integer({ min: 1, max: 12 }),
    n_layer: fc.integer({ min: 1, max: 3 }),
    vocab_size: fc.integer({ min: 1, max: 40 }),
    pad_vocab_size_multiple: fc.integer({ min: 1, max: 16 }),
    tie_embeddings: fc.boolean(),
    ssm_cfg: fc.record({ d_state: fc.integer({ min: 1, max: 8 }), d_conv: fc.integer({ min: 2, max: 8 }), expand: fc.constantFrom(1, 2), bias: fc.boolean() }),
  }),
  // mamba_ssm Mamba-2
  fc.integer({ min: 1, max: 8 }).chain((D) =>
    divisorOf(2 * D).chain((P) =>
      fc.record({
        d_model: fc.constant(D),
        n_layer: fc.integer({ min: 1, max: 3 }),
        vocab_size: fc.integer({ min: 1, max: 40 }),
        ssm_cfg: fc.record({
          layer: fc.constant('Mamba2'),
          headdim: fc.constant(P),
          ngroups: divisorOf((2 * D) / P),
          d_state: fc.integer({ min: 1, max: 8 }),
          chunk_size: fc.integer({ min: 1, max: 300 }),
          dt_limit: fc.tuple(fc.constant(0), fc.constantFrom(0.5, Infinity)),
        }),
      }),
    ),
  ),
);
