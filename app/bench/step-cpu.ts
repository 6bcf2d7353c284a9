/**
 * The CPU a decode step costs: the time spent inside `Session.stepsFromGpu` (encoding the steps'
 * dispatches and the sampler's, finishing and submitting the command buffer). The GPU runs steps
 * while the CPU encodes the next ones, so where this approaches a token's time the decode is bound
 * by the CPU (Dawn's per-dispatch cost), not by its kernels.
 */
import type { Session } from '../model/session.js';

/** Times every stepsFromGpu (stepFromGpu) of `session` from now on; the result reads the mean ms a step so far (0 before the first). */
export function timeStepCpu(session: Session): { msPerStep(): number; steps(): number } {
  const step = session.stepsFromGpu.bind(session);
  let ms = 0;
  let steps = 0;
  session.stepsFromGpu = (count, then) => {
    const t = performance.now();
    step(count, then);
    ms += performance.now() - t;
    steps += count;
  };
  return { msPerStep: () => (steps > 0 ? ms / steps : 0), steps: () => steps };
}
