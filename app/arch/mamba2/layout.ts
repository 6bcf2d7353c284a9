/**
 * Where Mamba-2's activations are inside one another, per token row (the kernels take strided
 * views and know no model layout). The row widths and offsets themselves are
 * app/model/mamba2-layout.ts mamba2Layout's (the memory plan sizes the buffers from them, below this layer).
 */
import type { StridedView } from '../../kernels/selective-scan.js';
import type { XbcView } from '../../kernels/ssd.js';
import { mamba2Layout, type Mamba2Dims } from '../../model/mamba2-layout.js';

export { mamba2Layout, type Mamba2Dims } from '../../model/mamba2-layout.js';

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
