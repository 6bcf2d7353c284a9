/** Reads a golden fixture's golden.safetensors (test/fixtures/golden/<case>/), tensor by tensor. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { inspectModel } from '../../app/arch/inspect';
import { readSafetensorsHeader, readTensorBytes, toFloat32, toIntegers } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import type { GpuContext, KernelTuning } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { loadWeights } from '../../app/model/loader';
import type { SequenceState } from '../../app/model/mixer';
import type { LanguageModel, PlanOptions } from '../../app/model/model';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { stepLogits } from './steps';

export async function readGolden(dir: string) {
  const bytes = readFileSync(path.join(dir, 'golden.safetensors'));
  const source = memorySource(`${dir}/golden.safetensors`, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const header = await readSafetensorsHeader(source);
  const tensor = (name: string) => {
    const t = header.tensors.get(name);
    if (!t) throw new Error(`golden.safetensors has no ${name}`);
    return t;
  };
  return {
    f32: async (name: string) => toFloat32(tensor(name), await readTensorBytes(source, tensor(name))),
    ints: async (name: string) => toIntegers(tensor(name), await readTensorBytes(source, tensor(name))),
  };
}

/** A golden case in `dir`: its model (inspected, its weights on the GPU), its golden tensors and its input ids. */
export async function openGoldenModel(gpu: GpuContext, dir: string) {
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  const weights = await loadWeights(gpu, files, inspection);
  await files.close();
  const golden = await readGolden(dir);
  return { inspection, weights, golden, ids: await golden.ints('input_ids') };
}

/**
 * The golden case's cached steps (generate.prompt_ids prefilled, then each of generated_ids but
 * the last through model.plan(1, …, `options`) with `tuning` set): each step's logits against
 * transformers' generated_logits row (row 0: the prefill's last), as relative errors in order,
 * and the plan's dispatches a step.
 */
export async function cachedStepErrors(
  gpu: GpuContext,
  model: LanguageModel,
  golden: Awaited<ReturnType<typeof readGolden>>,
  options: PlanOptions,
  tuning?: KernelTuning,
): Promise<{ errors: number[]; dispatches: number }> {
  const V = model.config.vocabSize;
  const prompt = [...(await golden.ints('generate.prompt_ids'))];
  const generated = [...(await golden.ints('generated_ids'))];
  const expected = await golden.f32('generated_logits'); // row i: the logits generated[i] was chosen from
  const row = (i: number) => expected.subarray(i * V, (i + 1) * V);
  const before = gpu.tuning;
  gpu.tuning = tuning ?? before;
  const session = new Session(gpu, model);
  try {
    session.prefill(prompt);
    const errors = [relativeError(await session.readLogits(), row(0))];
    const state = (session as unknown as { state: SequenceState }).state;
    const plan = model.plan(1, state, session.logits, options);
    const dispatches = plan.steps.filter((s) => s.kind === 'dispatch').length;
    const steps = await stepLogits(gpu, model, session, plan, generated.slice(0, -1));
    steps.forEach((logits, i) => errors.push(relativeError(logits, row(i + 1))));
    plan.destroy();
    return { errors, dispatches };
  } finally {
    session.destroy();
    gpu.tuning = before;
  }
}
