/**
 * The int8 products' layout (app/kernels/int8-gemm.ts): the padding of code rows and columns and
 * which block Hadamard rotation `quantizeRowsI8` applies; apart from the op so that CPU code (the
 * float64 reference, the memory plan, the renderer) can use them without the shaders.
 */

/** Rows, columns and K are padded to multiples of this (the tensor-core kernel's tile; K in bytes). */
export const INT8_TILE = 64;

export const roundUp = (v: number, to = INT8_TILE) => Math.ceil(v / to) * to;

/** i32 words per code row of `cols` columns (padded to INT8_TILE). */
export const int8Words = (cols: number) => roundUp(cols) / 4;

/** The largest Hadamard block the products rotate by (quantize_rot takes up to 4 × its workgroup of 256; weights and activations must use the same). */
export const MAX_ROTATION = 256;

/**
 * The Hadamard block a product over `cols` inputs is rotated with: the largest power of two
 * dividing cols, at most MAX_ROTATION; 0 (none) below 4.
 */
export function int8RotationBlock(cols: number): number {
  const block = Math.min(MAX_ROTATION, cols & -cols);
  return block >= 4 ? block : 0;
}
