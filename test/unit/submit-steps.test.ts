/**
 * submitSteps (app/model/model.ts): a plan's steps submitted in pieces, each its own command
 * buffer, so the GPU starts before the CPU has encoded a whole prefill chunk. Checked on a
 * recording stand-in for the device: every step encoded once, in order, in pieces of the stated
 * sizes; the hooks at the head of the first piece and the tail of the last; one submit a piece.
 */
import { describe, expect, it } from 'vitest';
import { FIRST_PIECE_STEPS, PIECE_STEPS, submitSteps, type Step } from '../../app/model/model';
import type { Dispatch } from '../../app/kernels/dispatch';

/** A device that logs what is encoded and submitted: "piece N", "pass", "d<i>", "copy <i>", "end", "submit". */
function recorder() {
  const log: string[] = [];
  let pieces = 0;
  const encoder = () => {
    const piece = pieces++;
    log.push(`piece ${piece}`);
    return {
      beginComputePass: () => {
        log.push('pass');
        return { end: () => log.push('end') };
      },
      copyBufferToBuffer: (from: { label: string }) => log.push(`copy ${from.label}`),
      finish: () => ({ piece }),
    };
  };
  const device = { createCommandEncoder: encoder, queue: { submit: (buffers: { piece: number }[]) => log.push(`submit ${buffers.map((b) => b.piece).join(',')}`) } };
  return { device: device as unknown as GPUDevice, log };
}

const dispatch = (i: number): Step => ({ kind: 'dispatch', dispatch: { label: `d${i}`, encode: () => undefined, destroy: () => undefined } as unknown as Dispatch });
const copy = (i: number): Step => ({ kind: 'copy', from: { label: `c${i}` } as GPUBuffer, fromOffset: 0, to: {} as GPUBuffer, toOffset: 0, bytes: 4 });

describe('submitSteps', () => {
  it('encodes every step once, in order, in pieces of FIRST_PIECE_STEPS then PIECE_STEPS dispatches', () => {
    const count = FIRST_PIECE_STEPS + 2 * PIECE_STEPS + 5;
    const { device, log } = recorder();
    const steps: Step[] = [];
    for (let i = 0; i < count; i++) {
      const d = dispatch(i);
      (d as { dispatch: Dispatch }).dispatch.encode = () => void log.push(`d${i}`);
      steps.push(d);
      if (i % 10 === 3) steps.push(copy(i));
    }
    expect(submitSteps(device, 'Test', steps)).toBe(4);
    // The dispatches in log order are 0 .. count − 1, and each copy follows its dispatch.
    expect(log.filter((l) => l.startsWith('d')).map((l) => Number(l.slice(1)))).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(log.filter((l) => l.startsWith('copy'))).toEqual(steps.filter((s) => s.kind === 'copy').map((s) => `copy ${(s.from as { label: string }).label}`));
    for (const c of log.filter((l) => l.startsWith('copy'))) expect(log[log.indexOf(c) - 2]).toBe(`d${c.slice(6)}`); // "d<i>", "end", "copy c<i>"
    // Dispatches a piece, counted between the "piece" lines; one submit a piece, in order.
    const perPiece: number[] = [];
    for (const line of log) {
      if (line.startsWith('piece')) perPiece.push(0);
      else if (line.startsWith('d')) perPiece[perPiece.length - 1]! += 1;
    }
    expect(perPiece).toEqual([FIRST_PIECE_STEPS, PIECE_STEPS, PIECE_STEPS, 5]);
    expect(log.filter((l) => l.startsWith('submit'))).toEqual(['submit 0', 'submit 1', 'submit 2', 'submit 3']);
  });

  it('puts `before` at the head of the first piece and `after` at the tail of the last, also when there is one piece or no step', () => {
    for (const count of [0, 3, FIRST_PIECE_STEPS + 1]) {
      const { device, log } = recorder();
      const steps = Array.from({ length: count }, (_, i) => dispatch(i));
      const before = { label: 'before' } as GPUBuffer;
      const after = { label: 'after' } as GPUBuffer;
      submitSteps(device, 'Test', steps, {
        before: (e) => e.copyBufferToBuffer(before, 0, {} as GPUBuffer, 0, 4),
        after: (e) => e.copyBufferToBuffer(after, 0, {} as GPUBuffer, 0, 4),
      });
      expect(log[0]).toBe('piece 0');
      expect(log[1], `${count} steps`).toBe('copy before');
      const submits = log.filter((l) => l.startsWith('submit')).length;
      expect(submits).toBe(count > FIRST_PIECE_STEPS ? 2 : 1);
      expect(log.slice(-2)).toEqual(['copy after', `submit ${submits - 1}`]);
      expect(log.filter((l) => l.startsWith('copy'))).toEqual(['copy before', 'copy after']);
    }
  });
});
