/**
 * How much the int8 prefill's quantization moves a model's logits, in float64 on the CPU (no GPU):
 * the reference forward (app/arch/registry.ts referenceForward) of a random checkpoint made as the
 * bench makes its random weights (app/bench/bench.ts randomWeights: matrices and vectors uniform in
 * ±1/√(last dimension), norms 1, A_log = log(1 + 15u)), with
 *   - the int8 products (app/model/reference.ts int8Linear) in in_proj and out_proj, each alone and both;
 *   - instead, every projection's output times (1 ± 0.5 %) at random: a perturbation of the size
 *     int8 makes, which says how strongly the model itself amplifies small errors.
 * Prints the relative error of all positions' logits and of the last one's. Run with
 * `node tooling/run-int8-sensitivity.js [layers] [d_model] [tokens]` (default 8 256 96).
 * bench/RESULTS.md (issue 19 item 1, the int8 prefill) has its numbers: random Mamba-2 amplifies a
 * 0.5 % perturbation ~90× more than random Mamba-1, so the bench's random Mamba-2 logits are no
 * measure of int8's accuracy on a trained one.
 */
import { canonicalConfig, referenceForward } from '../app/arch/registry';
import { expectedTensors } from '../app/arch/tensors';
import { relativeError } from '../app/kernels/self-test';
import { int8Linear, linear, type Linear } from '../app/model/reference';
import { seededRandom } from '../app/random';

export async function main(args: string[]): Promise<number> {
  const [layers, dModel, tokens] = [Number(args[0] ?? 8), Number(args[1] ?? 256), Number(args[2] ?? 96)];
  const vocab = 256;
  for (const raw of [
    { model_type: 'mamba2', hidden_size: dModel, num_hidden_layers: layers, vocab_size: vocab, state_size: 128, num_heads: (2 * dModel) / 64, head_dim: 64, n_groups: 1, chunk_size: 64, tie_word_embeddings: true },
    { model_type: 'mamba', hidden_size: dModel, num_hidden_layers: layers, vocab_size: vocab, state_size: 16 },
  ]) {
    const config = canonicalConfig(`random ${raw.model_type}`, raw);
    const random = seededRandom(7);
    const table = new Map<string, Float32Array>();
    for (const t of expectedTensors(config, 'backbone.embeddings.weight')) {
      if (t.optional) continue;
      const n = t.shape.reduce((a, b) => a * b, 1);
      const norm = t.name.endsWith('norm.weight') || t.name.endsWith('norm_f.weight');
      const scale = 1 / Math.sqrt(t.shape[t.shape.length - 1] as number);
      table.set(t.name, Float32Array.from({ length: n }, () => (norm ? 1 : t.name.endsWith('A_log') ? Math.log(1 + 15 * random()) : (2 * random() - 1) * scale)));
    }
    const ids = Array.from({ length: tokens }, () => Math.floor(random() * vocab));
    const weights = (name: string) => table.get(name);
    const exact = referenceForward(config, weights, ids).logits;
    const last = (v: Float64Array) => v.subarray((tokens - 1) * vocab);
    const report = (what: string, projection: Linear) => {
      const got = referenceForward(config, weights, ids, 'backbone.', undefined, projection).logits;
      console.log(`${raw.model_type} ${layers} layers, d_model ${dModel}, ${tokens} tokens, ${what}: logits ${relativeError(got, exact).toExponential(2)}, last ${relativeError(last(got), last(exact)).toExponential(2)}`);
    };
    const { dModel: D } = config;
    report('int8 in_proj and out_proj', int8Linear);
    report('int8 in_proj only', (x, T, I, W, O, b) => (I === D ? int8Linear : linear)(x, T, I, W, O, b));
    report('int8 out_proj only', (x, T, I, W, O, b) => (I !== D ? int8Linear : linear)(x, T, I, W, O, b));
    report('fp64, outputs × (1 ± 0.5 %)', (x, T, I, W, O, b) => linear(x, T, I, W, O, b).map((v) => v * (1 + 0.01 * (random() - 0.5))));
  }
  return 0;
}
