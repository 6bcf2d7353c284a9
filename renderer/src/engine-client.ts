/** The UI side of the engine worker: typed requests, promise per request, events to a callback. */
import type {
  EngineEvent,
  EngineMessage,
  EngineRequest,
  EngineRequestKind,
  EngineRequests,
  EngineResponse,
} from '../../app/engine/protocol';

export class EngineClient {
  private nextId = 1;
  private readonly pending = new Map<number, (response: EngineResponse) => void>();

  constructor(
    private readonly worker: Worker,
    onEvent: (event: EngineEvent) => void,
  ) {
    worker.addEventListener('message', (message: MessageEvent<EngineMessage>) => {
      const data = message.data;
      if (data.type === 'event') {
        onEvent(data.event);
        return;
      }
      const resolve = this.pending.get(data.response.id);
      this.pending.delete(data.response.id);
      resolve?.(data.response);
    });
    worker.addEventListener('error', (event) => {
      onEvent({ kind: 'gpu-error', message: `Engine worker failed: ${event.message || 'unknown error'}` });
    });
  }

  static start(onEvent: (event: EngineEvent) => void): EngineClient {
    const worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
    return new EngineClient(worker, onEvent);
  }

  request<K extends EngineRequestKind>(kind: K, params: EngineRequests[K]['params']): Promise<EngineRequests[K]['result']> {
    return this.start(kind, params).result;
  }

  /** Sends a request and returns its id too (its 'work-progress' events and a `cancel` name it). */
  start<K extends EngineRequestKind>(kind: K, params: EngineRequests[K]['params']): { id: number; result: Promise<EngineRequests[K]['result']> } {
    const id = this.nextId++;
    const result = new Promise<EngineRequests[K]['result']>((resolve, reject) => {
      this.pending.set(id, (response) => {
        if (response.ok) resolve(response.result as EngineRequests[K]['result']);
        else reject(new Error(response.error));
      });
      this.worker.postMessage({ id, kind, params } as EngineRequest);
    });
    return { id, result };
  }
}
