/**
 * The test GGUF writer writes real block-format tensors (issue 17): each of the eight formats of
 * ggml-quants.ts gets GGML's type id and block size (checked against app/formats/ggml.ts
 * GGML_TYPES, from ggml.c's type_traits), its bytes are the test quantizer's blocks, and the GGUF
 * reader reads back the type, the byte length and the values (dequantized by the CPU reference)
 * within half a step of each block.
 */
import { describe, expect, it } from 'vitest';
import { dequantize, GGML_TYPES } from '../../app/formats/ggml';
import { QUANT_TYPES } from '../../app/formats/ggml-quants';
import { readGgufHeader } from '../../app/formats/gguf-reader';
import { memorySource } from '../../app/formats/source';
import { seededRandom } from '../../app/random';
import { quantize } from '../support/ggml-quantize';
import { encode, GGML_TYPE_IDS, GT, tensorBytes, writeGguf } from '../support/gguf-writer';

describe('gguf-writer block formats', () => {
  it('has GGML’s id, block size and bytes for each of the eight formats', () => {
    for (const type of QUANT_TYPES) {
      const id = GGML_TYPE_IDS[type];
      const known = GGML_TYPES[id as keyof typeof GGML_TYPES];
      expect(known.name, type).toBe(type);
      expect(tensorBytes(type, [3, 512]), type).toBe(((3 * 512) / known.blockSize) * known.typeSize);
    }
  });

  it.each(QUANT_TYPES)('%s: a written tensor reads back with its type, size and values within a step', async (type) => {
    const rand = seededRandom(17);
    const shape = [3, 512];
    const values = Float32Array.from({ length: 3 * 512 }, () => (rand() - 0.3) * 2);
    const data = encode(type, values);
    expect(data).toEqual(quantize(type, values));
    const bytes = writeGguf({ kv: [{ key: 'general.architecture', type: GT.STRING, value: 'mamba' }], tensors: [{ name: 'w', shape, type, data }] });
    const source = memorySource('w.gguf', bytes);
    const header = await readGgufHeader(source);
    const info = header.tensors.get('w')!;
    expect(info).toMatchObject({ type, shape, byteLength: tensorBytes(type, shape) });
    const back = dequantize('w.gguf', { name: 'w', dtype: type }, await source.read(info.offset, info.byteLength));
    // The coarsest step of these formats is Q4_0/Q4_1's range/15 over values in [−0.6, 1.4).
    let worst = 0;
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs((back[i] as number) - (values[i] as number)));
    expect(worst).toBeGreaterThan(0); // lossy: really quantized, not stored as floats
    expect(worst).toBeLessThanOrEqual(2 / 15);
  });
});
