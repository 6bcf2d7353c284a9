/**
 * A checkpoint (Mamba-1 or Mamba-2, canonical transformers names, float32 values) written as a GGUF
 * in llama.cpp's layout with llama.cpp's quantization policy, for the whole-model quantization
 * test (issue 17, test/gpu/golden-quantized.test.ts).
 *
 * Layout as llama.cpp's converter writes it (and test/gpu/golden-gguf.test.ts): token_embd,
 * blk.N.{attn_norm, ssm_in, ssm_conv1d [C, K], ssm_x, ssm_dt, ssm_a = −exp(A_log) ([H, 1] for
 * Mamba-2), ssm_d, ssm_norm [G, d_inner / G], ssm_out}, output_norm, output (when untied). In_proj
 * and out_proj biases, which llama.cpp's Mamba has not, are written as ssm_in.bias / ssm_out.bias
 * (the studio's reader maps them), so a golden case with biases can be written too.
 *
 * Quantization policy (llama.cpp's llama-quant.cpp, `llama_tensor_get_type`): only the big 2-D
 * matrices are quantized — token_embd, output, ssm_in, ssm_out; Mamba's small 2-D weights (ssm_x,
 * ssm_dt, ssm_conv1d) and every 1-D tensor (norms, A, D, biases) stay F32. 'Q8_0' and 'Q4_K' put
 * every quantized matrix in that type; 'Q4_K_M' is the mix llama.cpp's Q4_K_M gives a Mamba model
 * (none of its per-layer Q6_K bumps names an SSM tensor): Q6_K for the output matrix (for the
 * embedding when the head is tied, as then it is the output), Q4_K for the rest. A matrix whose
 * rows are not a whole number of blocks stays F32 (gguf-py's converter falls back the same way).
 */
import { f16ToF32 } from '../../app/formats/float16';
import { QUANT_LAYOUT, scaleMin, type QuantType } from '../../app/formats/ggml-quants';
import type { MambaConfig } from '../../app/model/config';
import { encode, mambaGgufKv, writeGguf, type WriterTensor, type WriterType } from './gguf-writer';

export type QuantPolicy = 'F32' | 'Q8_0' | 'Q4_K' | 'Q4_K_M';

export interface QuantizedGguf {
  bytes: Uint8Array;
  /** GGUF tensor name → the type written. */
  types: Map<string, WriterType>;
  /**
   * Canonical name → the rounding step of each element of a quantized tensor, read from the
   * blocks written (`blockSteps`); the quantizers keep every value within half of it.
   */
  steps: Map<string, Float32Array>;
}

const MATRIX = /^(token_embd|output|blk\.\d+\.ssm_(in|out))\.weight$/;

/** The type llama.cpp's policy gives GGUF tensor `name` (row-major `shape`) under `policy`. */
export function policyType(name: string, shape: readonly number[], policy: QuantPolicy, tied: boolean): WriterType {
  if (policy === 'F32' || shape.length !== 2 || !MATRIX.test(name)) return 'F32';
  const isOutput = name === 'output.weight' || (tied && name === 'token_embd.weight');
  const type: QuantType = policy === 'Q8_0' ? 'Q8_0' : policy === 'Q4_K_M' && isOutput ? 'Q6_K' : 'Q4_K';
  return (shape[1] as number) % QUANT_LAYOUT[type].blockSize === 0 ? type : 'F32';
}

/**
 * The rounding step of every element of `bytes` (blocks of `type`): Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
 * the block's d; Q4_K, Q5_K d·sc of the element's sub-block (sc its 6-bit scale); Q6_K |d·sc|.
 */
export function blockSteps(type: QuantType, bytes: Uint8Array): Float32Array {
  const { blockSize, typeSize } = QUANT_LAYOUT[type];
  const blocks = bytes.byteLength / typeSize;
  const out = new Float32Array(blocks * blockSize);
  const half = (i: number) => f16ToF32((bytes[i] as number) | ((bytes[i + 1] as number) << 8));
  for (let b = 0; b < blocks; b++) {
    const at = b * typeSize;
    const o = b * blockSize;
    if (blockSize === 32) out.fill(Math.abs(half(at)), o, o + 32);
    else if (type === 'Q6_K') for (let e = 0; e < 256; e++) out[o + e] = Math.abs(half(at + 208) * (((bytes[at + 192 + (e >> 4)] as number) << 24) >> 24));
    else for (let j = 0; j < 8; j++) out.fill(Math.abs(half(at) * scaleMin(bytes, at + 4, j).scale), o + 32 * j, o + 32 * j + 32);
  }
  return out;
}

/**
 * Writes `table` (canonical names → float32 values, as the checkpoint holds them) as a GGUF of
 * `config`'s architecture with `policy`'s types. Mamba-1 and Mamba-2 (not Falcon-Mamba).
 */
export function checkpointToGguf(name: string, config: MambaConfig, table: ReadonlyMap<string, Float32Array>, policy: QuantPolicy): QuantizedGguf {
  const arch = config.architecture;
  if (arch !== 'mamba' && arch !== 'mamba2') throw new Error(`checkpointToGguf: ${arch} is not written here`);
  const get = (n: string) => {
    const t = table.get(n);
    if (!t) throw new Error(`${name}: the checkpoint has no ${n}`);
    return t;
  };
  const tied = !table.has('lm_head.weight');
  const tensors: WriterTensor[] = [];
  const types = new Map<string, WriterType>();
  const steps = new Map<string, Float32Array>();
  const put = (ggufName: string, canonical: string, shape: number[], values: ArrayLike<number> = get(canonical)) => {
    const type = policyType(ggufName, shape, policy, tied);
    const data = encode(type, values);
    tensors.push({ name: ggufName, shape, type, data });
    types.set(ggufName, type);
    if (type !== 'F32') steps.set(canonical, blockSteps(type as QuantType, data));
  };
  const { dModel: D, vocabSize: V, dInner: Di, dState: N, dConv: K, nLayer: L } = config;
  put('token_embd.weight', 'backbone.embeddings.weight', [V, D]);
  for (let l = 0; l < L; l++) {
    const m = `backbone.layers.${l}.mixer.`;
    const b = `blk.${l}.`;
    put(`${b}attn_norm.weight`, `backbone.layers.${l}.norm.weight`, [D]);
    put(`${b}ssm_in.weight`, `${m}in_proj.weight`, [get(`${m}in_proj.weight`).length / D, D]);
    if (table.has(`${m}in_proj.bias`)) put(`${b}ssm_in.bias`, `${m}in_proj.bias`, [get(`${m}in_proj.bias`).length]);
    const conv = get(`${m}conv1d.weight`);
    put(`${b}ssm_conv1d.weight`, `${m}conv1d.weight`, [conv.length / K, K]);
    if (table.has(`${m}conv1d.bias`)) put(`${b}ssm_conv1d.bias`, `${m}conv1d.bias`, [conv.length / K]);
    const a = Array.from(get(`${m}A_log`), (v) => -Math.exp(v));
    if (arch === 'mamba') {
      const R = config.dtRank;
      put(`${b}ssm_x.weight`, `${m}x_proj.weight`, [R + 2 * N, Di]);
      put(`${b}ssm_dt.weight`, `${m}dt_proj.weight`, [Di, R]);
      put(`${b}ssm_dt.bias`, `${m}dt_proj.bias`, [Di]);
      put(`${b}ssm_a`, `${m}A_log`, [Di, N], a);
      put(`${b}ssm_d`, `${m}D`, [Di]);
    } else {
      const H = config.nHeads;
      const G = config.nGroups;
      put(`${b}ssm_dt.bias`, `${m}dt_bias`, [H]);
      put(`${b}ssm_a`, `${m}A_log`, [H, 1], a);
      put(`${b}ssm_d`, `${m}D`, [H, 1]);
      put(`${b}ssm_norm.weight`, `${m}norm.weight`, [G, Di / G]);
    }
    put(`${b}ssm_out.weight`, `${m}out_proj.weight`, [D, Di]);
    if (table.has(`${m}out_proj.bias`)) put(`${b}ssm_out.bias`, `${m}out_proj.bias`, [D]);
  }
  put('output_norm.weight', 'backbone.norm_f.weight', [D]);
  if (!tied) put('output.weight', 'lm_head.weight', [V, D]);
  // general.file_type: llama_ftype (ALL_F32 0, MOSTLY_Q8_0 7, MOSTLY_Q4_K_S 14, MOSTLY_Q4_K_M 15).
  const fileType = { F32: 0, Q8_0: 7, Q4_K: 14, Q4_K_M: 15 }[policy];
  const kv = mambaGgufKv(arch, name, config, fileType);
  return { bytes: writeGguf({ kv, tensors }), types, steps };
}
