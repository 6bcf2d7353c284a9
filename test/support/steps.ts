/** One-token decode steps through a plan in tests: write the id, encode the plan's steps, submit, read the logits. */
import type { GpuContext } from '../../app/gpu/context';
import { encodeSteps, type ForwardPlan, type LanguageModel } from '../../app/model/model';
import type { Session } from '../../app/model/session';

/** `session`'s logits after each of `ids` through `plan` (model.plan(1, …) on its state); `after` runs after each step. */
export async function stepLogits(gpu: GpuContext, model: LanguageModel, session: Session, plan: Pick<ForwardPlan, 'steps'>, ids: readonly number[], after?: () => void): Promise<Float32Array[]> {
  const logits: Float32Array[] = [];
  for (const id of ids) {
    gpu.device.queue.writeBuffer(model.idsBuffer, 0, Uint32Array.of(id));
    const encoder = gpu.device.createCommandEncoder();
    encodeSteps(encoder, 'Test.step', plan.steps);
    gpu.device.queue.submit([encoder.finish()]);
    logits.push(await session.readLogits());
    after?.();
  }
  return logits;
}
