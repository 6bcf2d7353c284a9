/**
 * Where Mamba-2's activations are inside one another, per token row (the kernels take strided
 * views and know no model layout). The one place Mamba-2's in_proj width is computed.
 */
import type { StridedView } from '../../kernels/selective-scan.js';
import type { XbcView } from '../../kernels/ssd.js';

export interface Mamba2Dims {
  dInner: number; // Di = H·P
  nGroups: number; // G
  dState: number; // N
  nHeads: number; // H
}

/**
 * Element offsets of Mamba-2's activations per token row: in_proj's output
 * [T, inProjWidth] = [z (Di) | xBC (Di + 2·G·N) | dt (H)], and the conv output
 * [T, xbcWidth] = [x (Di) | B (G·N) | C (G·N)] (groups concatenated in order).
 */
export function mamba2Layout(dims: Mamba2Dims) {
  const gn = dims.nGroups * dims.dState;
  return {
    inProjWidth: 2 * dims.dInner + 2 * gn + dims.nHeads,
    zOffset: 0,
    xbcOffset: dims.dInner,
    dtOffset: 2 * dims.dInner + 2 * gn,
    xbcWidth: dims.dInner + 2 * gn,
    bOffset: dims.dInner,
    cOffset: dims.dInner + gn,
  };
}

/** x, B, C inside the causal conv's output xBC [T, Di + 2·G·N]. */
export function convXbc(buffer: GPUBuffer, dims: Mamba2Dims): XbcView {
  const l = mamba2Layout(dims);
  return { buffer, rowStride: l.xbcWidth, xOffset: 0, bOffset: l.bOffset, cOffset: l.cOffset };
}

/** z [T, Di] inside Mamba-2's in_proj output. */
export function mamba2InProjZ(buffer: GPUBuffer, dims: Mamba2Dims): StridedView {
  const l = mamba2Layout(dims);
  return { buffer, offset: l.zOffset, rowStride: l.inProjWidth };
}

/** dt [T, H] (without dt_bias) inside Mamba-2's in_proj output. */
export function mamba2InProjDt(buffer: GPUBuffer, dims: Mamba2Dims): StridedView {
  const l = mamba2Layout(dims);
  return { buffer, offset: l.dtOffset, rowStride: l.inProjWidth };
}
