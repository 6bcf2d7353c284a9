/**
 * The int8 prefill's choices and sizes, without the GPU (app/model/int8-prefill.ts runs it): what
 * the setting takes, which weights it quantizes, and their bytes for the memory plan (memory.ts)
 * and the renderer's setting.
 */
import { int8Words, roundUp } from '../kernels/int8-layout.js';

/** How a model's prefill runs its large matrix products: fp32 (exact to the traces' tolerance) or int8. */
export type PrefillMatmul = 'fp32' | 'int8';
export const PREFILL_MATMULS: readonly PrefillMatmul[] = ['fp32', 'int8'];

/**
 * Fewest tokens in a chunk for the int8 products: below it the activations' quantization and the
 * 64-row tiles' padding cost more than the fp32 kernels (a decode-sized chunk stays fp32).
 */
export const INT8_MIN_TOKENS = 64;

/**
 * The mixer weights (under a mixer prefix) that run as int8 products: the SSM mixers' projections —
 * in_proj and out_proj, and Mamba-1's x_proj and dt_proj (at mamba-2.8b, 2,048 tokens, the fp32
 * x_proj and dt_proj took 221 and 176 µs of a 2,027 µs layer: FLOP-bound fp32 products).
 */
export const INT8_PROJECTIONS = ['in_proj.weight', 'x_proj.weight', 'dt_proj.weight', 'out_proj.weight'] as const;

/** Whether the tensor named `name` ([rows, cols]) is one of INT8_PROJECTIONS of a mixer. */
export function isInt8Projection(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && INT8_PROJECTIONS.some((p) => name.endsWith(`.mixer.${p}`));
}

/** Bytes of one matrix's int8 codes and row scales ([rows, cols]). */
export function int8MatrixBytes(rows: number, cols: number): number {
  return roundUp(rows) * int8Words(cols) * 4 + roundUp(rows) * 4;
}

