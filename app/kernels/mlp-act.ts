/**
 * Op: the activation between an MLP's matmuls (hybrid models' MLP blocks, app/arch/hybrid/mlp.ts):
 * act(x) for a plain MLP (Nemotron-H: relu²), or act(gate) · up for a gated one whose up matmul
 * writes both halves in one row (Granite shared_mlp.input_linear: gate first; mamba_ssm GatedMLP
 * fc1: up first). Shader: shaders/mlp_act.wgsl. Reference: mlp-act.ref.ts.
 */
import actCode from '../../shaders/mlp_act.wgsl?raw';
import sigmoidCode from '../../shaders/sigmoid.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindGroupFor, bindGroupLayoutFor, checkBufferElements, checkCount, checkWrittenNotAliased, singleDispatch } from './op-helpers.js';

const OP = 'MlpAct';
const code = sigmoidCode + actCode;
const WORKGROUP_SIZE = 256;
export const MLP_ACTIVATIONS = ['silu', 'gelu', 'gelu_tanh', 'relu2'] as const;

export interface MlpActShape {
  tokens: number; // T
  intermediate: number; // I
  activation: (typeof MLP_ACTIVATIONS)[number];
  /** x is [T, 2I] (gate and up halves) instead of [T, I]. */
  gated: boolean;
  /** Gated: the gate is the first half of each row (else the second). */
  gateFirst: boolean;
}

export function mlpAct(ctx: GpuContext, shape: MlpActShape, buffers: { x: GPUBuffer; output: GPUBuffer }, label = OP): Dispatch {
  const { tokens: T, intermediate: I } = shape;
  checkCount(OP, 'tokens', T, 1);
  checkCount(OP, 'intermediate', I, 1);
  const act = MLP_ACTIVATIONS.indexOf(shape.activation);
  if (act < 0) throw new RangeError(`${OP}: unknown activation ${String(shape.activation)} (${MLP_ACTIVATIONS.join(', ')})`);
  checkBufferElements(OP, 'x', buffers.x, T * I * (shape.gated ? 2 : 1));
  checkBufferElements(OP, 'output', buffers.output, T * I);
  checkWrittenNotAliased(OP, [['x', buffers.x]], [['output', buffers.output]]);
  const maxDim = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const columns = Math.ceil(I / WORKGROUP_SIZE);
  if (columns > maxDim) throw new RangeError(`${OP}: intermediate ${I} needs ${columns} workgroups, over this device's ${maxDim} per dimension`);
  const rowsY = Math.min(T, maxDim);
  const { device } = ctx;
  const layout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'storage']);
  const pipeline = ctx.pipelines.get({ op: OP, code, layout, constants: { WORKGROUP_SIZE } });
  const params = uniformBuffer(device, `${label}.params`, 32);
  device.queue.writeBuffer(params, 0, new Uint32Array([T, I, shape.gated ? 1 : 0, shape.gateFirst ? 1 : 0, act, rowsY, 0, 0]));
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, layout, [params, buffers.x, buffers.output].map((buffer) => ({ buffer })));
  return singleDispatch(label, pipeline, bindGroup, [columns, rowsY, Math.ceil(T / rowsY)], [params]);
}
