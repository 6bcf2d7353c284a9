/**
 * What the "Get models" view shows, as pure functions (unit-tested in Node): a choice's verdict for
 * this GPU, progress text, and the list of downloads as events update it.
 */
import type { HubChoiceView, HubJob } from '../../../app/contract';
import { formatBytes } from '../../../app/hub/errors';
import { describeDeviceMemory, describeMemoryPlan, type DeviceMemory, type MemoryPlan } from '../../../app/model/memory-plan';

export interface Verdict {
  fits: boolean | null;
  text: string;
}

/**
 * Whether a choice's weights fit this GPU's memory (app/model/memory-plan.ts's device estimate),
 * before anything is downloaded: the weights as stored are what the GPU holds with the 'auto'
 * weights setting (the checkpoint's own precision). The full plan (state, activations, trace) is
 * the load panel's, once the model is here.
 */
export function choiceVerdict(choice: Pick<HubChoiceView, 'weightBytes'>, device: DeviceMemory): Verdict {
  const weights = `weights ${formatBytes(choice.weightBytes)}`;
  if (device.bytes === null) return { fits: null, text: `${weights} · GPU memory unknown (${device.what})` };
  const fits = choice.weightBytes <= device.bytes;
  return { fits, text: fits ? `${weights} · fits ${describeDeviceMemory(device)}` : `${weights} · does not fit ${describeDeviceMemory(device)}` };
}

/**
 * The memory plan's verdict for a choice (its headers read over the Hub: hubPlan), as the load
 * panel says it: what it needs, and whether the model fits this GPU (loading checks the same plan).
 */
export function planVerdict(plan: MemoryPlan): Verdict {
  const device = describeDeviceMemory(plan.device);
  const refused = plan.oversize.find((t) => t.bindings === null);
  if (refused) return { fits: false, text: `${describeMemoryPlan(plan)} — ${refused.name} is larger than one GPU binding: loading is refused` };
  if (plan.largestActivation.overLimit) return { fits: false, text: `${describeMemoryPlan(plan)} — its ${plan.largestActivation.label} activation is larger than one GPU binding: loading is refused` };
  if (plan.modelFits === false) return { fits: false, text: `${describeMemoryPlan(plan)} — does not fit ${device}` };
  if (plan.modelFits === true) return { fits: true, text: `${describeMemoryPlan(plan)} · fits ${device}` };
  return { fits: null, text: `${describeMemoryPlan(plan)} · GPU memory unknown (${plan.device.what})` };
}

const duration = (s: number | null) => (s === null || !Number.isFinite(s) ? '—' : s < 90 ? `${Math.ceil(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

/** "12.0 MB of 945 MB · 3.10 MB/s · 5 min left", or the state when it is not running. */
export function progressText(p: Pick<HubJob, 'bytes' | 'total' | 'speed' | 'etaSeconds'> & { state: string }): string {
  const amount = `${formatBytes(p.bytes)} of ${formatBytes(p.total)}`;
  if (p.state === 'downloading') return `${amount} · ${formatBytes(p.speed)}/s · ${duration(p.etaSeconds)} left`;
  return `${amount} · ${p.state}`;
}

/** The downloads list after an event: the job replaced in place, or added first. */
export function withJob(jobs: readonly HubJob[], job: HubJob): HubJob[] {
  const i = jobs.findIndex((j) => j.id === job.id);
  if (i < 0) return [job, ...jobs];
  const next = [...jobs];
  next[i] = job;
  return next;
}
