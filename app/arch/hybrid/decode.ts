/**
 * The one-token decode of a hybrid block (Mixer.encodeDecode): the block's RMSNorm of the
 * residual stream into a normed row of its own (residual-rmsnorm), then the mixer's usual steps
 * with its last projection accumulating into the residual stream (the residual add). So a hybrid
 * model keeps the fused decode of its Mamba layers (the model fuses only when every mixer can).
 */
import { residualRmsNorm } from '../../kernels/residual-rmsnorm.js';
import type { DecodeLayerContext, MixerBuild, MixerState, ModelTaps } from '../../model/mixer.js';
import { hybridDecodeActivations } from '../../model/memory.js';
import type { Dispatch } from '../../kernels/dispatch.js';

/** What a hybrid block's steps need, from a MixerContext or a DecodeLayerContext. */
export interface BlockSteps {
  layer: number;
  tokens: number;
  state: MixerState;
  taps: ModelTaps | undefined;
  run(dispatch: Dispatch): void;
  /** Copies the T rows of `rowBytes` of `from` into a tap buffer at the chunk's row (no-op without one). */
  copy(from: GPUBuffer, to: GPUBuffer | undefined, rowBytes: number): void;
  knockRow: number | null;
  /** Normed input [T, D], and the output [T, D]: written, or added to with `accumulate`. */
  input: GPUBuffer;
  output: GPUBuffer;
  accumulate: boolean;
}

/**
 * A block's encodeDecode from its `steps`: normed residual in, residual += out. Its normed row (and
 * the norm kernel's copy of its input) are activations shared by the hybrid blocks, made now.
 */
export function normedDecode(build: MixerBuild, kind: string, steps: (s: BlockSteps) => void): (m: DecodeLayerContext) => void {
  const D = build.config.dModel;
  const sizes = hybridDecodeActivations(D);
  const rows = build.shared('hybrid.decodeNorm', () => ({ copy: build.activation(sizes.copy.label, sizes.copy.elements), normed: build.activation(sizes.normed.label, sizes.normed.elements) }));
  return (m) => {
    m.run(residualRmsNorm(build.ctx, { rows: 1, cols: D, eps: m.eps, hasResidual: false }, { hidden: m.residual, residual: rows.copy, weight: m.normWeight, output: rows.normed }, `${kind}.L${m.layer}.norm`));
    steps({
      layer: m.layer,
      tokens: 1,
      state: m.state,
      taps: m.taps,
      run: m.run,
      copy: (from, to, rowBytes) => m.copy(from, 0, to, rowBytes),
      knockRow: null,
      input: rows.normed,
      output: m.residual,
      accumulate: true,
    });
  };
}
