/**
 * Fuzz property over the library index (main/library.ts): library.json (and its backup) holding
 * valid indexes mutated every way — huge strings, many items, wrong types, unknown keys, garbage
 * or truncated JSON, deep nesting, newer versions — always loads: never a throw, only valid
 * records, and a notice whenever something was not taken as it was. Whatever it then writes
 * loads again unchanged (round trip), or, read-only (a newer version's index), it writes nothing
 * and touches nothing.
 *
 * Runs: FUZZ_RUNS (default 1,000); seed: FUZZ_SEED to replay a failure (fast-check prints it).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ARCHITECTURE_NAMES } from '../../app/arch/registry';
import { fitRecord, INDEX_VERSION, LIBRARY_LIMITS as L, LibraryIndexFile, parseIndex, type LibraryRecord } from '../../main/library';
import { ModelFileError } from '../../app/formats/errors';
import { isModelFileName } from '../../app/library/model-files';
import { isPlainName } from '../../main/model-files';
import { PROPERTY_TIMEOUT_MS } from '../support/fuzz-model';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** One load + save + reload, on a fresh folder, takes well under this. */
const CASE_BUDGET_MS = 5_000;

// tmpfs where there is one: each case syncs its writes, which costs milliseconds on a disk.
const root = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'fuzz-library-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const fileName = fc.oneof(
  fc.constantFrom('config.json', 'tokenizer.json', 'studio.json', 'model.safetensors', 'model.gguf', 'model.safetensors.index.json'),
  fc.stringMatching(/^[a-z0-9-]{1,12}\.safetensors$/),
);
const entry = fc.record(
  {
    id: fc.stringMatching(/^user:[0-9a-f]{16}$/),
    name: fc.string({ maxLength: 40 }),
    source: fc.constant('user'),
    format: fc.constantFrom('safetensors', 'gguf'),
    architecture: fc.constantFrom(...ARCHITECTURE_NAMES, 'unknown'),
    files: fc.uniqueArray(fileName, { maxLength: 6 }),
    baseUrl: fc.string({ maxLength: 40 }),
    sizeBytes: fc.nat(),
    path: fc.string({ minLength: 1, maxLength: 60 }),
    description: fc.string({ maxLength: 40 }),
    parameters: fc.nat(),
    config: fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.boolean(), fc.array(fc.integer(), { maxLength: 3 }))),
    lastOpened: fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString()),
    warnings: fc.array(fc.string({ maxLength: 50 }), { maxLength: 4 }),
  },
  { requiredKeys: ['id', 'name', 'source', 'format', 'architecture', 'files', 'baseUrl', 'sizeBytes', 'path'] },
);
const record = fc.record(
  { entry, validatedKey: fc.stringMatching(/^[0-9a-f]{0,64}$/), folder: fc.string({ minLength: 1, maxLength: 60 }) },
  { requiredKeys: ['entry', 'validatedKey'] },
);
/** A valid index: distinct ids. */
const validIndex = fc
  .uniqueArray(record, { maxLength: 6, selector: (r) => r.entry.id })
  .map((models) => ({ version: INDEX_VERSION as number, models: models as unknown[] }));

const DEEP_ARRAY = '@@deep-array@@';
const DEEP_OBJECT = '@@deep-object@@';
const deepen = (json: string) =>
  json.replace(/\{"@@deep-(array|object)@@":(\d+)\}/g, (_, kind: string, n: string) =>
    kind === 'array' ? `${'['.repeat(Number(n))}${']'.repeat(Number(n))}` : `${'{"a":'.repeat(Number(n))}null${'}'.repeat(Number(n))}`,
  );

/** Values that break things: huge strings, deep nesting, many items, wrong types, prototype keys. */
const nasty: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.anything({ maxDepth: 2, withNullPrototype: true }).filter((x) => x !== undefined),
  fc.nat({ max: 20_000 }).map((n) => 'x'.repeat(n)),
  // Deep nesting is spliced into the text (JSON.stringify itself cannot write it): see `deepen`.
  fc.integer({ min: 1, max: 12_000 }).map((n) => ({ [DEEP_ARRAY]: n })),
  fc.integer({ min: 1, max: 12_000 }).map((n) => ({ [DEEP_OBJECT]: n })),
  fc.nat({ max: 10_000 }).map((n) => Array.from({ length: n }, (_, i) => `f${i}.safetensors`)),
  fc.constantFrom(-1, 1e308, Number.MAX_SAFE_INTEGER + 2, 0.5, '', null, true, [], {}, '__proto__', 'user:', 'Infinity'),
  fc.constant(JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}}') as unknown),
);

/** Values on both sides of each limit of LIBRARY_LIMITS, per field of an entry. */
const around = (limit: number) => fc.integer({ min: Math.max(0, limit - 2), max: limit + 2 });
const nestedObject = (depth: number): Record<string, unknown> => (depth <= 1 ? { v: 1 } : { a: nestedObject(depth - 1) });
const nearLimit: Record<string, fc.Arbitrary<unknown>> = {
  id: around(L.id).map((n) => `user:${'u'.repeat(Math.max(0, n - 5))}`),
  name: around(L.fileName).map((n) => 'n'.repeat(n)),
  path: around(L.path).map((n) => 'p'.repeat(Math.max(1, n))),
  baseUrl: around(L.text).map((n) => 'b'.repeat(n)),
  description: around(L.text).map((n) => 'd'.repeat(n)),
  lastOpened: around(64).map((n) => 't'.repeat(n)),
  files: fc.oneof(
    around(L.files).map((n) => Array.from({ length: n }, (_, i) => `s${i}.safetensors`)),
    around(L.fileName).map((n) => [`${'x'.repeat(Math.max(0, n - 12))}.safetensors`]),
    fc.constantFrom(['notes.txt'], ['../config.json'], ['a/b.gguf'], ['.'], [''], ['config.json\0']),
  ),
  warnings: fc.oneof(
    around(L.warnings).map((n) => Array.from({ length: n }, (_, i) => `w${i}`)),
    around(L.warning).map((n) => ['w'.repeat(n)]),
  ),
  config: fc.oneof(
    around(L.config.depth).map((d) => nestedObject(d)),
    around(L.config.entries).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
    around(L.config.string).map((n) => ({ s: 'c'.repeat(n), [`${'k'.repeat(n)}`]: 1 })),
    fc.integer({ min: 14, max: 17 }).map((m) => Object.fromEntries(Array.from({ length: m }, (_, i) => [`k${i}`, Array.from({ length: 255 }, () => 0)]))),
    fc.integer({ min: 1, max: 12_000 }).map((n) => ({ [DEEP_OBJECT]: n })),
  ),
  sizeBytes: fc.constantFrom(-1, 1e308, 0, 2 ** 53, -0),
  parameters: fc.constantFrom(-1, 1e308, 0, 2 ** 53),
};
const ENTRY_KEYS = ['id', 'name', 'source', 'format', 'architecture', 'files', 'baseUrl', 'sizeBytes', 'path', 'description', 'parameters', 'config', 'lastOpened', 'warnings', 'extra', '__proto__'];

type Mutation = (index: { version: number; models: unknown[] }) => unknown;
const fieldMutation: fc.Arbitrary<Mutation> = fc
  .constantFrom(...ENTRY_KEYS)
  .chain((key) => {
    const near = Object.hasOwn(nearLimit, key) ? nearLimit[key] : undefined;
    return fc.tuple(fc.constant(key), fc.constant(near !== undefined), near ? fc.oneof(nasty, near, near) : nasty, fc.nat(), fc.boolean());
  })
  .map(([key, hasNear, value, i, onRecord]) => (index) => {
    if (index.models.length === 0) return { ...index, models: [value] };
    const models = [...index.models];
    const at = i % models.length;
    const r = models[at] as { entry: Record<string, unknown> };
    models[at] = onRecord && !hasNear
      ? { ...r, [key === 'extra' ? 'validatedKey' : key === 'id' ? 'folder' : key]: value }
      : { ...r, entry: Object.defineProperty({ ...r.entry }, key, { value, enumerable: true, configurable: true, writable: true }) };
    return { ...index, models };
  });

/** A small valid record with the given number as its id. */
const minimalRecord = (i: number) => ({
  entry: { id: `user:${i.toString(16).padStart(16, '0')}`, name: '', source: 'user', format: 'gguf', architecture: 'mamba', files: [], baseUrl: '', sizeBytes: 0, path: 'p' },
  validatedKey: '',
});

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 15, arbitrary: fc.constant<Mutation>((index) => index) },
  { weight: 80, arbitrary: fieldMutation },
  { weight: 20, arbitrary: nasty.map<Mutation>((value) => (index) => ({ ...index, models: [...index.models, value] })) },
  { weight: 10, arbitrary: nasty.map<Mutation>((value) => (index) => ({ ...index, version: value })) },
  { weight: 10, arbitrary: nasty.map<Mutation>((value) => (index) => ({ ...index, models: value })) },
  { weight: 10, arbitrary: nasty.map<Mutation>((value) => () => value) },
  // Up to the most models an index may hold, and beyond (rare: such a case takes half a second).
  { weight: 1, arbitrary: fc.integer({ min: 9_990, max: 10_010 }).map<Mutation>((n) => (index) => ({ ...index, models: Array.from({ length: n }, (_, i) => minimalRecord(i)) })) },
  { weight: 10, arbitrary: fc.constant<Mutation>((index) => ({ ...index, version: 1 })) },
  { weight: 10, arbitrary: fc.constant<Mutation>((index) => ({ ...index, models: [...index.models, ...index.models] })) }, // duplicate ids
);

/** How the text on disk is made from the mutated value. */
const encoding = fc.oneof(
  { weight: 6, arbitrary: fc.constant((x: unknown) => deepen(JSON.stringify(x) ?? 'undefined')) },
  { weight: 1, arbitrary: fc.nat().map((n) => (x: unknown) => deepen(JSON.stringify(x) ?? '').slice(0, n)) }, // a save killed midway
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => () => s) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => () => Buffer.from(b).toString('latin1')) },
);

const side = fc.record({ value: validIndex, mutate: mutation, encode: encoding });
const testCase = fc.record({
  main: fc.option(side, { freq: 8 }),
  backup: fc.option(side, { freq: 2 }),
  strayTemp: fc.boolean(),
});

function describeValidity(text: string | null): 'missing' | 'whole' | 'partial' | 'bad' | 'newer' {
  if (text === null) return 'missing';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'bad';
  }
  const parsed = parseIndex(value);
  if ('error' in parsed) return parsed.newer ? 'newer' : 'bad';
  return parsed.dropped.length ? 'partial' : 'whole';
}

let caseNo = 0;
describe('library index fuzz', () => {
  it(`loads every mutated index cleanly and round-trips what it writes (${RUNS} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(testCase, async ({ main, backup, strayTemp }) => {
        const dir = path.join(root, String(caseNo++));
        mkdirSync(dir);
        const text = (s: typeof main) => (s ? s.encode(s.mutate(s.value)) : null);
        const mainText = text(main);
        const backupText = text(backup);
        if (mainText !== null) writeFileSync(path.join(dir, 'library.json'), mainText);
        if (backupText !== null) writeFileSync(path.join(dir, 'library.json.bak'), backupText);
        if (strayTemp) writeFileSync(path.join(dir, 'library.json.tmp-1-2-abc'), '{"version": 2, "mo');
        const started = performance.now();

        const index = new LibraryIndexFile(dir);
        const { records, notices } = await index.load(); // never rejects
        const after = readdirSync(dir);
        expect(after.some((f) => f.includes('.tmp-'))).toBe(false);
        // Every record is valid: the reader's own parser takes them whole.
        const reparsed = parseIndex(JSON.parse(JSON.stringify({ version: INDEX_VERSION, models: records })));
        expect(reparsed).toEqual({ records, dropped: [] });

        const mainState = describeValidity(mainText);
        const backupState = describeValidity(backupText);
        if (mainState === 'whole') expect(notices).toEqual([]);
        else if (mainState === 'missing' && backupState === 'missing') expect({ records, notices }).toEqual({ records: [], notices: [] });
        else expect(notices.length).toBeGreaterThan(0); // anything not taken as it was is said
        // Nothing is deleted: every file that was there is still there, under its name or set aside.
        const contents = after.map((f) => readFileSync(path.join(dir, f), 'latin1'));
        for (const original of [mainText, backupText]) {
          if (original !== null) expect(contents).toContain(Buffer.from(original, 'utf8').toString('latin1'));
        }

        const readOnly = mainState === 'newer' || (mainState !== 'whole' && mainState !== 'partial' && backupState === 'newer');
        if (readOnly) {
          expect(await index.save(records)).toBe(false);
          expect(readdirSync(dir).sort()).toEqual([...after].sort());
        } else {
          expect(await index.save(records)).toBe(true);
          const again = await new LibraryIndexFile(dir).load();
          expect(again).toEqual({ records, notices: [] });
        }
        expect(performance.now() - started).toBeLessThan(CASE_BUDGET_MS);
        rmSync(dir, { recursive: true, force: true });
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    console.log(`fuzz-library: ${caseNo} index cases, 0 failures`);
  }, Math.max(600_000, PROPERTY_TIMEOUT_MS));

  it(`fitRecord trims any record into one the index loads, or refuses it with a ModelFileError (${RUNS} cases)`, () => {
    let cases = 0;
    const overrides = fc.array(
      fc.constantFrom(...Object.keys(nearLimit)).chain((key) => fc.tuple(fc.constant(key), nearLimit[key] as fc.Arbitrary<unknown>)),
      { maxLength: 3 },
    );
    fc.assert(
      fc.property(record, overrides, (base, changes) => {
        cases++;
        const entry: Record<string, unknown> = { ...base.entry };
        for (const [key, value] of changes) entry[key] = key === 'config' ? realDeep(value) : value;
        const files = entry.files as string[];
        const over = (key: string, max: number) => typeof entry[key] === 'string' && (entry[key] as string).length > max;
        const untrimmable =
          over('id', L.id) || over('path', L.path) || over('baseUrl', L.text) || over('description', L.text) || over('lastOpened', 64) ||
          files.length > L.files || files.some((f) => !isPlainName(f) || !isModelFileName(f) || f.length > L.fileName) ||
          (entry.sizeBytes as number) < 0 || (entry.parameters as number) < 0;
        let fitted: LibraryRecord;
        try {
          fitted = fitRecord({ ...base, entry } as unknown as LibraryRecord);
        } catch (error) {
          expect(error).toBeInstanceOf(ModelFileError);
          expect((error as Error).message).toMatch(/: cannot be recorded in the library \(record\.entry\./);
          expect(untrimmable).toBe(true);
          return;
        }
        expect(untrimmable).toBe(false);
        expect(parseIndex(JSON.parse(JSON.stringify({ version: INDEX_VERSION, models: [fitted] })))).toEqual({ records: [fitted], dropped: [] });
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    console.log(`fuzz-library: ${cases} record cases, 0 failures`);
    // Vitest's 5 s default took CI's 1,000 cases (~0.5 s), not `npm run test:fuzz`'s 20,000 (9 s).
  }, PROPERTY_TIMEOUT_MS);
});

/** A config value with the deep-nesting marker made into the real deep object (built without recursion). */
function realDeep(value: unknown): unknown {
  const n = (value as Record<string, unknown> | null)?.[DEEP_OBJECT];
  if (typeof n !== 'number') return value;
  const top: Record<string, unknown> = {};
  let at = top;
  for (let i = 1; i < n; i++) at = at.a = {} as Record<string, unknown>;
  return top;
}
