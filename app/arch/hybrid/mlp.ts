/**
 * A hybrid model's MLP block as a mixer (issue 22): stateless,
 *   h = up(normed)                 matmul   [T, I] or [T, 2I] (gated: gate and up halves in one row;
 *                                           with a separate gate matrix, two matmuls, one per half)
 *   a = act(h) or act(gate) · up   mlp-act  [T, I]
 *   out = down(a)                  matmul   [T, D]
 * Biases (`<name>.bias`) are used when present. The one-token decode (encodeDecode) folds in the
 * block norm and the residual add (./decode.ts). Activations are shared by the model's MLP layers
 * of one width.
 */
import { MATMUL_SCRATCH_ELEMENTS, MATMUL_SCRATCH_KEY, matmul } from '../../kernels/matmul.js';
import { mlpAct } from '../../kernels/mlp-act.js';
import type { Mixer, MixerBuild, MixerContext, MixerState } from '../../model/mixer.js';
import { mlpActivations, mlpUpWidth } from '../../model/memory.js';
import { biasName, checkMlpConfig, type MlpConfig } from './config.js';
import { normedDecode, type BlockSteps } from './decode.js';

export function mlpMixer(build: MixerBuild, cfg: MlpConfig): Mixer {
  checkMlpConfig(`layer ${build.layer} MLP`, cfg);
  const I = cfg.intermediate;
  const upWidth = mlpUpWidth(cfg);
  const T = build.maxTokens;
  const w = build.weights;
  const D = build.config.dModel;
  const gate = cfg.gated ? cfg.names.gate : undefined;
  for (const name of [cfg.names.up, cfg.names.down, ...(gate ? [gate] : [])]) if (!w.has(name)) throw new RangeError(`layer ${build.layer} MLP: no weight ${name}`);
  // Sized by the memory plan's formulas (app/model/memory.ts), so that it counts these buffers exactly.
  const sizes = mlpActivations(cfg, T);
  const act = build.shared(`mlp.activations.${upWidth}.${I}`, () => ({
    up: build.activation(sizes.up.label, sizes.up.elements),
    hidden: build.activation(sizes.hidden.label, sizes.hidden.elements),
    scratch: T > 1 ? build.shared(MATMUL_SCRATCH_KEY, () => build.activation('matmulScratch', MATMUL_SCRATCH_ELEMENTS)) : undefined,
  }));
  const steps = (m: BlockSteps): void => {
    const { tokens, layer: l, run } = m;
    const { up, down } = cfg.names;
    if (gate) {
      // Separate gate and up matrices: each writes its half of the [T, 2I] rows (gate first, as gateFirst orders the kernel's halves).
      const half = (name: string, offset: number, label: string) =>
        run(matmul(build.ctx, { tokens, inFeatures: D, outFeatures: I, yOffset: offset, yStride: upWidth, weightFormat: w.format(name) }, { x: m.input, weight: w.weight(name), bias: w.optional(biasName(name)), y: act.up, scratch: act.scratch }, `Mlp.L${l}.${label}`));
      half(gate, cfg.gateFirst ? 0 : I, 'gate');
      half(up, cfg.gateFirst ? I : 0, 'up');
    } else {
      run(matmul(build.ctx, { tokens, inFeatures: D, outFeatures: upWidth, weightFormat: w.format(up) }, { x: m.input, weight: w.weight(up), bias: w.optional(biasName(up)), y: act.up, scratch: act.scratch }, `Mlp.L${l}.up`));
    }
    run(mlpAct(build.ctx, { tokens, intermediate: I, activation: cfg.activation, gated: cfg.gated, gateFirst: cfg.gateFirst }, { x: act.up, output: act.hidden }, `Mlp.L${l}.act`));
    run(matmul(build.ctx, { tokens, inFeatures: I, outFeatures: D, accumulate: m.accumulate, weightFormat: w.format(down) }, { x: act.hidden, weight: w.weight(down), bias: w.optional(biasName(down)), y: m.output, scratch: act.scratch }, `Mlp.L${l}.down`));
  };

  return {
    stateBytes: 0,
    trace: null,
    newState: (): MixerState => [],
    canFuseDecode: () => true,
    decodeTaps: [],
    encode: (m: MixerContext) => steps({ ...m, accumulate: false }),
    encodeDecode: normedDecode(build, 'Mlp', steps),
    destroy(): void {},
  };
}
