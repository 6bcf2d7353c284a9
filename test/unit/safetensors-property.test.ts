/**
 * Property: random corruptions of a valid safetensors file never make the parser fail with
 * anything but the studio's own ModelFileError, never hang, and never read (so never allocate)
 * more than the file holds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../../app/formats/errors';
import { readSafetensorsHeader } from '../../app/formats/safetensors';
import { memorySource, type ByteSource } from '../../app/formats/source';
import { writeSafetensors } from '../support/safetensors-writer';

const valid = writeSafetensors({
  'backbone.embeddings.weight': { dtype: 'F32', shape: [5, 3], data: Array.from({ length: 15 }, (_, i) => i) },
  'backbone.layers.0.mixer.A_log': { dtype: 'F32', shape: [3, 2], data: [1, 2, 3, 4, 5, 6] },
  ids: { dtype: 'I64', shape: [2], data: [1, 2] },
});
const headerLength = Number(new DataView(valid.buffer).getBigUint64(0, true));

type Corruption =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'truncate'; to: number }
  | { kind: 'length'; value: bigint }
  | { kind: 'splice'; at: number; text: string };

const corruption: fc.Arbitrary<Corruption> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat({ max: 8 + headerLength - 1 }), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), to: fc.nat({ max: valid.byteLength }) }),
  fc.record({ kind: fc.constant('length' as const), value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  fc.record({
    kind: fc.constant('splice' as const),
    at: fc.nat({ max: headerLength - 1 }),
    text: fc.constantFrom('-1', '1e308', '"F16"', '[', ']', '{}', 'null', '99999999999999999999', '"data_offsets":[0,0]', ',', '"shape":[]'),
  }),
);

function apply(c: Corruption): Uint8Array {
  const bytes = valid.slice();
  switch (c.kind) {
    case 'flip':
      bytes[c.at] = c.value;
      return bytes;
    case 'truncate':
      return bytes.subarray(0, c.to);
    case 'length':
      new DataView(bytes.buffer).setBigUint64(0, c.value, true);
      return bytes;
    case 'splice': {
      const text = new TextEncoder().encode(c.text);
      const at = 8 + c.at;
      bytes.set(text.subarray(0, Math.max(0, 8 + headerLength - at)), at); // same length: overwrite inside the header
      return bytes;
    }
  }
}

/** Wraps a source, counting the bytes asked for. */
function counting(source: ByteSource): ByteSource & { requested: number } {
  const wrapped = {
    name: source.name,
    size: source.size,
    requested: 0,
    read(offset: number, length: number) {
      wrapped.requested += length;
      return source.read(offset, length);
    },
  };
  return wrapped;
}

describe('safetensors header under random corruption', () => {
  it('fails only with ModelFileError, promptly, reading no more than the file', async () => {
    await fc.assert(
      fc.asyncProperty(corruption, async (c) => {
        const bytes = apply(c);
        const source = counting(memorySource('fuzz.safetensors', bytes));
        const started = performance.now();
        const outcome = await readSafetensorsHeader(source).then(
          () => 'parsed',
          (error: unknown) => error,
        );
        expect(performance.now() - started).toBeLessThan(1000);
        if (outcome !== 'parsed') {
          expect(outcome).toBeInstanceOf(ModelFileError);
          expect((outcome as ModelFileError).message.startsWith('fuzz.safetensors: ')).toBe(true);
        }
        expect(source.requested).toBeLessThanOrEqual(bytes.byteLength);
      }),
      { numRuns: 2000 },
    );
  });
});
