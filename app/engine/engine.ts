/**
 * The engine as seen from its host (the renderer's worker, or Node): handles typed requests.
 * It owns the GPU context; nothing here knows about Electron, React or the DOM.
 */
import { describeAdapter } from '../gpu/adapter.js';
import { openGpu, type GpuContext } from '../gpu/context.js';
import { GpuError } from '../gpu/errors.js';
import { webGpuAdvice } from '../gpu/advice.js';
import { runResidualRmsNormCheck } from '../kernels/self-test.js';
import type { EngineEvent, EngineRequest, EngineRequestKind, EngineRequests, EngineResponse, GpuStatus } from './protocol.js';

type Handler<K extends EngineRequestKind> = (
  params: EngineRequests[K]['params'],
) => Promise<EngineRequests[K]['result']>;

export class Engine {
  private gpu: GpuContext | null = null;
  private status: GpuStatus | null = null;
  private readonly handlers: { [K in EngineRequestKind]: Handler<K> };

  constructor(
    private readonly navigatorGpu: GPU | undefined,
    private readonly emit: (event: EngineEvent) => void,
    private readonly userAgent = '',
  ) {
    this.handlers = {
      init: (params) => this.init(params.powerPreference),
      selfTest: async (params) => runResidualRmsNormCheck(await this.context(), params.rows, params.cols),
    };
  }

  async handle(request: EngineRequest): Promise<EngineResponse> {
    try {
      const handler = this.handlers[request.kind] as Handler<typeof request.kind>;
      const result = await handler(request.params as never);
      return { id: request.id, kind: request.kind, ok: true, result } as EngineResponse;
    } catch (error) {
      return { id: request.id, kind: request.kind, ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  private async init(powerPreference?: GPUPowerPreference): Promise<GpuStatus> {
    if (this.status?.state === 'ready') return this.status;
    try {
      this.gpu = await openGpu(this.navigatorGpu, {
        ...(powerPreference ? { powerPreference } : {}),
        onLost: (info) => {
          this.gpu = null;
          this.status = null;
          this.emit({ kind: 'device-lost', ...info });
        },
        onUncapturedError: (message) => this.emit({ kind: 'gpu-error', message }),
      });
      this.status = { state: 'ready', adapter: this.gpu.adapter, description: describeAdapter(this.gpu.adapter) };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.status = { state: 'unavailable', reason, advice: webGpuAdvice(this.userAgent) };
    }
    return this.status;
  }

  private async context(): Promise<GpuContext> {
    if (!this.gpu) await this.init();
    if (!this.gpu) throw new GpuError('WebGPU is unavailable, so nothing can run on the GPU.', 'unavailable');
    return this.gpu;
  }
}
