/**
 * Where Mamba-1's activations are inside one another, per token row (the kernels take strided
 * views and know no model layout): in_proj's output [T, 2·Di] = [x | z], x_proj's output
 * [T, R + 2N] = [dt_r | B | C].
 */
import type { BcView, StridedView } from '../../kernels/selective-scan.js';

/** B and C inside x_proj's output [T, R + 2N] (dt_r, then B, then C). */
export function xProjBC(buffer: GPUBuffer, dtRank: number, dState: number): BcView {
  return { buffer, rowStride: dtRank + 2 * dState, bOffset: dtRank, cOffset: dtRank + dState };
}

/** x_proj's three parts as column bounds of its rows: dt_r [0, R), B [R, R+N), C [R+N, R+2N) (Falcon-Mamba normalizes each). */
export function xProjSegments(dtRank: number, dState: number): number[] {
  return [0, dtRank, dtRank + dState, dtRank + 2 * dState];
}

/** z inside in_proj's output [T, 2·Di] (x, then z). */
export function inProjZ(buffer: GPUBuffer, dInner: number): StridedView {
  return { buffer, offset: dInner, rowStride: 2 * dInner };
}
