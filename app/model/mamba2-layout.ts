/**
 * Mamba-2's row widths and offsets (mamba2Layout): used by the memory plan (memory.ts, which sizes
 * the buffers) and by app/arch/mamba2/layout.ts (which takes views by them, and re-exports this).
 * Imports nothing: the architecture registry reaches it, and so does what loads the Vite configs
 * (tooling/bundled-models.ts), which cannot load a shader's `?raw` import.
 */

/** Mamba-2's widths that place its activations in a token row. */
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
