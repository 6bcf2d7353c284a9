/**
 * Op: Mamba's depthwise causal conv1d over time, fused with its bias and the SiLU after it (or none), and
 * carrying the conv state between calls: one op for prefill (any T) and the decode step (T = 1).
 * Shader: shaders/causal_conv1d.wgsl. Reference: causal-conv1d.ref.ts.
 *
 *   out[t, d] = silu(bias[d] + Σ_k w[d, k] · xin(t - (K-1) + k, d)),
 *   xin(s, d) = x[s, d] for s ≥ 0, convState[d, K-1 + s] for s < 0,
 *
 * and afterwards convState[d, :] holds the last K-1 inputs (from x, and from the old state when
 * T < K-1), updated in the same dispatch. A new sequence starts from a zeroed convState.
 * x and out are strided views (offset, row stride in elements), e.g. x = the x half of
 * in_proj's output [T, 2·Di] (offset 0, stride 2·Di); convState may sit at an element offset in a
 * bigger buffer (one buffer for every layer's state, say).
 */
import convCode from '../../shaders/causal_conv1d.wgsl?raw';
import sigmoidCode from '../../shaders/sigmoid.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { ConvKernelName, GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkInteger, singleDispatch } from './op-helpers.js';

const OP = 'CausalConv1d';
const code = sigmoidCode + convCode;
const WORKGROUP_SIZE = 64;
/** Kernel sizes the shader takes (MAX_KERNEL_SIZE there). */
export const CONV_KERNEL_SIZES = { min: 2, max: 8 } as const;
/**
 * The kernel for K = 4 unless ctx.tuning.convKernel says: main_k4 (vectors, no arrays) or main
 * (loops over arrays, any K). On the H200 main_k4 takes 33 µs a layer where main takes 122
 * (mamba2-2.7b, 2,048 tokens; bench/RESULTS.md tenth session), the same floats.
 */
export const DEFAULT_CONV_KERNEL: ConvKernelName = 'k4';
/** Tokens per thread (grown for very long inputs); must stay ≥ K - 1 for the state update to be safe. */
const CHUNK_LENGTH = 16;

export interface CausalConv1dShape {
  tokens: number; // T
  channels: number; // C = d_inner
  kernelSize: number; // K = d_conv, 2..8
  /** Element offset of x[0, 0] (default 0). */
  xOffset?: number;
  /** Elements between rows of x (default C, ≥ C). */
  xStride?: number;
  /** Element offset of out[0, 0] (default 0). */
  outOffset?: number;
  /** Elements between rows of out (default C, ≥ C). */
  outStride?: number;
  /** Element offset of convState[0, 0] (default 0). */
  stateOffset?: number;
  /** 'none': no SiLU after the conv (mamba_ssm MHA's conv over q | k | v; default 'silu'). */
  activation?: 'silu' | 'none';
}

export interface CausalConv1dBuffers {
  x: GPUBuffer; // view [T, C]
  weight: GPUBuffer; // [C, K] (conv1d.weight [C, 1, K])
  bias?: GPUBuffer | null; // [C]
  convState: GPUBuffer; // [C, K-1] at stateOffset, read and updated
  output: GPUBuffer; // view [T, C]
}

export function causalConv1d(ctx: GpuContext, shape: CausalConv1dShape, buffers: CausalConv1dBuffers, label = OP): Dispatch {
  const { tokens: T, channels: C, kernelSize: K } = shape;
  const xOffset = shape.xOffset ?? 0;
  const xStride = shape.xStride ?? C;
  const outOffset = shape.outOffset ?? 0;
  const outStride = shape.outStride ?? C;
  const stateOffset = shape.stateOffset ?? 0;
  checkInteger(OP, 'tokens', T, 1);
  checkInteger(OP, 'channels', C, 1);
  if (!Number.isInteger(K) || K < CONV_KERNEL_SIZES.min || K > CONV_KERNEL_SIZES.max) {
    throw new RangeError(`${OP}: kernelSize must be an integer in ${CONV_KERNEL_SIZES.min}..${CONV_KERNEL_SIZES.max}, got ${K}`);
  }
  checkInteger(OP, 'xOffset', xOffset, 0);
  checkInteger(OP, 'xStride', xStride, C);
  checkInteger(OP, 'outOffset', outOffset, 0);
  checkInteger(OP, 'outStride', outStride, C);
  checkInteger(OP, 'stateOffset', stateOffset, 0);
  const { x: xBuffer, weight: wBuffer, bias: bBuffer, convState: sBuffer, output: oBuffer } = buffers;
  if (sBuffer === oBuffer) throw new RangeError(`${OP}: convState and output must be different buffers (${oBuffer.label})`);
  for (const [name, written] of [
    ['convState', sBuffer],
    ['output', oBuffer],
  ] as const) {
    if (written === xBuffer || written === wBuffer || written === bBuffer) {
      throw new RangeError(`${OP}: ${name} (${written.label}) is written, so it must not also be x, weight or bias`);
    }
  }
  const x = bindElements(ctx, OP, 'x', xBuffer, xOffset + (T - 1) * xStride + C);
  const weight = bindElements(ctx, OP, 'weight', wBuffer, C * K);
  const bias = bBuffer ? bindElements(ctx, OP, 'bias', bBuffer, C) : weight; // unread when has_bias = 0
  const convState = bindElements(ctx, OP, 'convState', sBuffer, stateOffset + C * (K - 1));
  const output = bindElements(ctx, OP, 'output', oBuffer, outOffset + (T - 1) * outStride + C);

  const maxGroups = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const chunkLength = Math.max(CHUNK_LENGTH, K - 1, Math.ceil(T / maxGroups));
  const groups: [number, number] = [Math.ceil(C / WORKGROUP_SIZE), Math.ceil(T / chunkLength)];
  if (groups[0] > maxGroups) {
    throw new RangeError(`${OP}: C=${C} needs ${groups[0]} workgroups, over this device's ${maxGroups} per dimension`);
  }

  const { device } = ctx;
  // params, x, weight, bias, convState, output
  const bindGroupLayout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'storage']);
  const entryPoint = K === 4 && (ctx.tuning?.convKernel ?? DEFAULT_CONV_KERNEL) === 'k4' ? 'main_k4' : 'main';
  const pipeline = ctx.pipelines.get({ op: OP, code, entryPoint, layout: bindGroupLayout, constants: { WORKGROUP_SIZE, KERNEL_SIZE: K } });
  const params = uniformBuffer(device, `${label}.params`, 48);
  device.queue.writeBuffer(
    params,
    0,
    new Uint32Array([T, C, xOffset, xStride, outOffset, outStride, stateOffset, chunkLength, bBuffer ? 1 : 0, shape.activation === 'none' ? 1 : 0, 0, 0]),
  );
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, bindGroupLayout, [{ buffer: params }, x, weight, bias, convState, output]);
  return singleDispatch(label, pipeline, bindGroup, groups, [params]);
}
