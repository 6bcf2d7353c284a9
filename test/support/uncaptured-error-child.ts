/**
 * Run by test/gpu/dawn-stdout.test.ts in a process of its own (bundled by Vite): opens the GPU as
 * the CLI does (findNodeGpu + openGpu, no error handler), makes two deliberate validation errors
 * that no error scope catches, then prints one JSON line on stdout, as `run --json` does.
 */
import { openGpu } from '../../app/gpu/context';
import { findNodeGpu } from '../../app/node/dawn';

const { gpu } = await findNodeGpu();
const { device } = await openGpu(gpu);
device.createBuffer({ label: 'Child.badUsage', size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
const encoder = device.createCommandEncoder({ label: 'Child.encoder' });
const small = device.createBuffer({ label: 'Child.small', size: 4, usage: GPUBufferUsage.COPY_SRC });
encoder.copyBufferToBuffer(small, 0, small, 0, 64); // out of bounds, and onto itself
device.queue.submit([encoder.finish()]);
await device.queue.onSubmittedWorkDone();
process.stdout.write(`${JSON.stringify({ ids: [1, 2, 3] })}\n`);
device.destroy();
