/**
 * Fuzz: safetensors weights beside a valid config.json. Generated headers (entries with any dtype,
 * shape and offsets, consistent or not; duplicate keys, a byte order mark, deep nesting), edits of
 * a valid model's header (shapes, dtypes, names, missing and extra tensors) and byte corruption
 * end in a valid header / inspection or a clean ModelFileError naming the file, within the time
 * and heap budget of one case (test/support/fuzz-model.ts). A header that parses must describe
 * tensors that lie inside the file, contiguous, each exactly as long as its shape and dtype say.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalConfig } from '../../app/arch/registry';
import { DTYPE_BYTES, readSafetensorsHeader, type SafetensorsHeader } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { checkProperty, expectCleanOutcome, fuzzStats, hostileJson, inspectCase, pythonJson, PROPERTY_TIMEOUT_MS, validConfig } from '../support/fuzz-model';
import { tinyModelBytes } from '../support/memory-model';
import { TINY_CONFIG } from '../support/tiny-model';
import { measure } from '../support/within-budget';
import { expectedTensors } from '../../app/arch/tensors';

const stats = fuzzStats('safetensors');

const NAMES = expectedTensors(canonicalConfig('c', TINY_CONFIG), 'backbone.embeddings.weight').map((s) => s.name);
const DTYPES = Object.keys(DTYPE_BYTES);

interface Entry {
  name: string;
  dtype: unknown;
  shape: unknown;
  offsets: unknown;
  /** Write this entry with consistent offsets (after the previous consistent ones, data up to 4 KiB in all) instead of `offsets`. */
  consistent: boolean;
}

const entry: fc.Arbitrary<Entry> = fc.record({
  name: fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 10 }), fc.constant('__metadata__')),
  dtype: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...DTYPES) }, hostileJson),
  shape: fc.oneof({ weight: 4, arbitrary: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 4 }) }, fc.array(hostileJson, { maxLength: 3 }), hostileJson),
  offsets: fc.oneof(fc.tuple(fc.nat({ max: 300 }), fc.nat({ max: 300 })), fc.array(hostileJson, { maxLength: 3 }), hostileJson),
  consistent: fc.boolean(),
});

/** Raw text spliced into the header JSON. */
const injection = fc.constantFrom('\ufeff', '"dtype":"F32",', '"a":1,"a":2,', ' ', '[[[[[[[[[[[[', '{"x":{"x":{"x":{"x":{"x":{"x":{"x":{"x":{}}}}}}}}}', '\\u0000', '"\\ud800"', '1e400', '-0');

interface Generated {
  entries: Entry[];
  metadata: unknown;
  extraData: number;
  injections: { at: number; text: string }[];
}

/** The header text and data bytes a generated case describes. */
function build(g: Generated): Uint8Array {
  const parts: string[] = [];
  let cursor = 0;
  if (g.metadata !== undefined) parts.push(`"__metadata__":${pythonJson(g.metadata)}`);
  for (const e of g.entries) {
    let offsets = e.offsets;
    if (e.consistent && typeof e.dtype === 'string' && e.dtype in DTYPE_BYTES && Array.isArray(e.shape) && e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      const bytes = (e.shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[e.dtype as keyof typeof DTYPE_BYTES];
      if (cursor + bytes <= 4096) {
        offsets = [cursor, cursor + bytes];
        cursor += bytes;
      }
    }
    parts.push(`${JSON.stringify(e.name)}:{"dtype":${pythonJson(e.dtype)},"shape":${pythonJson(e.shape)},"data_offsets":${pythonJson(offsets)}}`);
  }
  let text = `{${parts.join(',')}}`;
  for (const { at, text: t } of g.injections) {
    const i = at % (text.length + 1);
    text = text.slice(0, i) + t + text.slice(i);
  }
  const header = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + header.byteLength + cursor + g.extraData);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.byteLength), true);
  out.set(header, 8);
  return out;
}

/** A safetensors file with its header replaced by `edit(header)` (text: NaN, ±Infinity and deep nesting written as such), the data kept. */
function withHeaderText(file: Uint8Array, edit: (header: Record<string, unknown>) => string): Uint8Array {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, unknown>;
  const json = new TextEncoder().encode(edit(header));
  const out = new Uint8Array(8 + json.byteLength + file.byteLength - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(file.subarray(8 + n), 8 + json.byteLength);
  return out;
}

/** What a parsed header must satisfy. */
function expectSound(h: SafetensorsHeader): void {
  let cursor = h.dataOffset;
  const spans = [...h.tensors.values()].sort((a, b) => a.offset - b.offset);
  for (const t of spans) {
    expect(t.offset).toBe(cursor);
    expect(t.byteLength).toBe(t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]);
    cursor += t.byteLength;
  }
  expect(cursor).toBe(h.fileSize);
}

describe('fuzz: safetensors', () => {
  it('generated headers: a sound header or a clean ModelFileError; then inspected beside a valid config', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(
        fc.record({
          entries: fc.array(entry, { maxLength: 6 }),
          metadata: fc.option(fc.oneof(fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 3 }), hostileJson), { nil: undefined }),
          extraData: fc.oneof(fc.constant(0), fc.nat({ max: 64 })),
          injections: fc.array(fc.record({ at: fc.nat(), text: injection }), { maxLength: 2 }),
        }),
        async (g) => {
          const bytes = build(g);
          const outcome = await measure(() => readSafetensorsHeader(memorySource('m/model.safetensors', bytes)));
          expectCleanOutcome(stats, outcome, ['m/model.safetensors']);
          if (outcome.value) expectSound(outcome.value);
          await inspectCase(stats, { 'config.json': JSON.stringify(TINY_CONFIG), 'model.safetensors': bytes });
        },
      ),
    );
  }, PROPERTY_TIMEOUT_MS);

  type HeaderEdit =
    | { op: 'set'; index: number; field: 'dtype' | 'shape' | 'data_offsets'; value: unknown }
    | { op: 'dtype'; index: number; dtype: string }
    | { op: 'dim'; index: number; delta: number }
    | { op: 'rename'; index: number; name: string }
    | { op: 'drop'; index: number }
    | { op: 'extra'; name: string };
  const headerEdit: fc.Arbitrary<HeaderEdit> = fc.oneof(
    fc.record({ op: fc.constant('set' as const), index: fc.nat(), field: fc.constantFrom('dtype' as const, 'shape' as const, 'data_offsets' as const), value: hostileJson }),
    fc.record({ op: fc.constant('dtype' as const), index: fc.nat(), dtype: fc.constantFrom(...DTYPES) }),
    fc.record({ op: fc.constant('dim' as const), index: fc.nat(), delta: fc.integer({ min: -2, max: 2 }) }),
    fc.record({ op: fc.constant('rename' as const), index: fc.nat(), name: fc.oneof(fc.constantFrom(...NAMES, 'lm_head.weight', 'backbone.layers.99.norm.weight'), fc.string({ maxLength: 8 })) }),
    fc.record({ op: fc.constant('drop' as const), index: fc.nat() }),
    fc.record({ op: fc.constant('extra' as const), name: fc.string({ maxLength: 8 }) }),
  );

  function applyEdit(header: Record<string, unknown>, e: HeaderEdit): Record<string, unknown> {
    const names = Object.keys(header).filter((n) => n !== '__metadata__');
    if (e.op === 'extra') return { ...header, [e.name]: { dtype: 'F32', shape: [0], data_offsets: [0, 0] } };
    if (names.length === 0) return header;
    const name = names[e.index % names.length] as string;
    const t = header[name] as { dtype: string; shape: number[]; data_offsets: number[] };
    const out = { ...header };
    switch (e.op) {
      case 'set':
        out[name] = { ...t, [e.field]: e.value };
        break;
      case 'dtype':
        out[name] = { ...t, dtype: e.dtype };
        break;
      case 'dim':
        out[name] = { ...t, shape: Array.isArray(t.shape) && t.shape.length ? [Math.max(0, (t.shape[0] as number) + e.delta), ...t.shape.slice(1)] : t.shape };
        break;
      case 'rename':
        delete out[name];
        out[e.name] = t;
        break;
      case 'drop':
        delete out[name];
        break;
    }
    return out;
  }

  it('edits of a valid model’s header: a valid inspection or a clean ModelFileError naming the file', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(validConfig, fc.array(headerEdit, { minLength: 1, maxLength: 3 }), async (raw, edits) => {
        const files = tinyModelBytes(pythonJson(raw), raw);
        const edited = withHeaderText(files['model.safetensors'] as Uint8Array, (h) => pythonJson(edits.reduce(applyEdit, h)));
        await inspectCase(stats, { ...files, 'model.safetensors': edited });
      }),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('corrupted bytes of a valid model (flips, splices, cuts, header length): a valid inspection or a clean ModelFileError', async () => {
    const valid = tinyModelBytes(TINY_CONFIG)['model.safetensors'] as Uint8Array;
    const headerEnd = 8 + Number(new DataView(valid.buffer, valid.byteOffset).getBigUint64(0, true));
    await checkProperty(
      stats,
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.nat({ max: headerEnd - 1 }), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 6 }),
        fc.option(fc.nat({ max: valid.byteLength }), { freq: 4 }),
        fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { freq: 6 }),
        async (flips, cut, length) => {
          const bytes = valid.slice(0, cut ?? valid.byteLength);
          for (const f of flips) if (f.at < bytes.byteLength) bytes[f.at] = f.value;
          if (length !== null && bytes.byteLength >= 8) new DataView(bytes.buffer).setBigUint64(0, length, true);
          await inspectCase(stats, { 'config.json': JSON.stringify(TINY_CONFIG), 'model.safetensors': bytes });
        },
      ),
    );
  }, PROPERTY_TIMEOUT_MS);
});
