/**
 * One way to start a trace from the UI (the trace box, a chat turn): the request goes out with its
 * id in the store (progress events and Cancel name it), the previous trace stays on screen dimmed
 * until this one replaces it, a cancelled run brings the previous one back, and a failure keeps it
 * with the error. `focusLayer`: the layer to show when the trace arrives (studio.json's), when the
 * trace has it; else the layer shown stays (clamped to the new trace's layers). `detail`: what the
 * trace keeps ('auto', the engine's default, is left out of the request; 'windows': a long trace,
 * issue 18), with `focusChannels` for the GPU focus score.
 */
import type { PromptParam } from '../../../app/engine/protocol';
import { isCancelled } from '../../../app/analysis/cancel';
import type { EngineClient } from '../engine-client';
import { useStudio } from '../store';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function startTrace(engine: EngineClient, modelId: string, prompt: PromptParam, options: { focusLayer?: number; detail?: 'auto' | 'all' | 'windows'; focusChannels?: number[] } = {}): Promise<void> {
  const { detail, focusChannels } = options;
  const started = engine.start('trace', { modelId, prompt, ...(detail && detail !== 'auto' ? { detail } : {}), ...(focusChannels && focusChannels.length > 0 ? { focusChannels } : {}) });
  useStudio.getState().setTrace({ state: 'running', modelId, requestId: started.id });
  // What the export's metadata and sessions record: the text (or ids) traced.
  const recorded: { text: string } | { ids: number[] } = 'ids' in prompt ? { ids: prompt.ids } : { text: prompt.text };
  return started.result
    .then(
      (result) => {
        const s = useStudio.getState();
        const focus = options.focusLayer !== undefined ? result.layers.indexOf(options.focusLayer) : -1;
        s.setTraceLayer(focus >= 0 ? focus : Math.min(s.traceLayer, result.layers.length - 1));
        s.setTrace({ state: 'done', modelId, result, prompt: recorded });
      },
      (error: unknown) => {
        if (isCancelled(error)) useStudio.getState().cancelTrace(modelId);
        else useStudio.getState().setTrace({ state: 'failed', modelId, message: message(error) });
      },
    )
    .finally(() => useStudio.getState().endWork(started.id));
}

/** Cancels the running trace, if it is one this window started. */
export function cancelRunningTrace(engine: EngineClient): void {
  const running = useStudio.getState().trace;
  if (running?.state === 'running' && running.requestId !== undefined) void engine.request('cancel', { requestId: running.requestId });
}
