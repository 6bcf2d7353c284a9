/**
 * Compute pipelines, cached by compile-time facts only: the shader, its entry point and its
 * `override` constants. Shapes travel in uniforms, so one pipeline serves every size.
 */
export interface PipelineKey {
  /** Stable name of the op, used in labels: `Op.pipeline`. */
  op: string;
  code: string;
  entryPoint?: string;
  constants?: Record<string, number>;
  layout: GPUBindGroupLayout;
}

export class PipelineCache {
  /** Shader modules by their code (an op may have variants: e.g. with or without subgroup reductions), each with a number for pipeline ids. */
  private readonly modules = new Map<string, { module: GPUShaderModule; variant: number }>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();

  constructor(private readonly device: GPUDevice) {}

  /** One explicit bind group layout per op, shared by all its pipelines. */
  bindGroupLayout(op: string, entries: GPUBindGroupLayoutEntry[]): GPUBindGroupLayout {
    let layout = this.layouts.get(op);
    if (!layout) {
      layout = this.device.createBindGroupLayout({ label: `${op}.bindGroupLayout`, entries });
      this.layouts.set(op, layout);
    }
    return layout;
  }

  get(key: PipelineKey): GPUComputePipeline {
    const constants = Object.entries(key.constants ?? {}).sort(([a], [b]) => a.localeCompare(b));
    let entry = this.modules.get(key.code);
    if (!entry) {
      entry = { module: this.device.createShaderModule({ label: `${key.op}.shader`, code: key.code }), variant: this.modules.size };
      this.modules.set(key.code, entry);
    }
    const { module, variant } = entry;
    const id = `${key.op}|${variant}|${key.entryPoint ?? 'main'}|${constants.map(([k, x]) => `${k}=${x}`).join(',')}`;
    let pipeline = this.pipelines.get(id);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline({
        label: `${key.op}.pipeline`,
        layout: this.device.createPipelineLayout({ label: `${key.op}.pipelineLayout`, bindGroupLayouts: [key.layout] }),
        compute: { module, entryPoint: key.entryPoint ?? 'main', constants: Object.fromEntries(constants) },
      });
      this.pipelines.set(id, pipeline);
    }
    return pipeline;
  }

  get size(): number {
    return this.pipelines.size;
  }
}
