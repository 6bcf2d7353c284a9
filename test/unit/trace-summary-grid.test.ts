/**
 * How the GPU selection summaries spread a layer's state elements over invocations
 * (app/kernels/trace-summary.ts traceSummaryGrid): one element per invocation up to the target
 * workgroup count, then up to K_MAX each, every element covered exactly once.
 */
import { describe, expect, it } from 'vitest';
import { TARGET_WORKGROUPS, TRACE_SUMMARY_K_MAX, TRACE_SUMMARY_WORKGROUP, traceSummaryGrid } from '../../app/kernels/trace-summary';

describe('traceSummaryGrid', () => {
  it('covers every element with at most K_MAX per invocation', () => {
    // mamba-130m [1536, 16]; mamba-2.8b [5120, 16]; mamba2-2.7b [80, 64, 128]; tiny odd sizes.
    for (const elements of [1, 185, 210, 1536 * 16, 5120 * 16, 80 * 64 * 128, 64 * TARGET_WORKGROUPS + 1]) {
      const g = traceSummaryGrid(elements);
      expect(g.perThread).toBeGreaterThanOrEqual(1);
      expect(g.perThread).toBeLessThanOrEqual(TRACE_SUMMARY_K_MAX);
      expect(g.threads).toBe(g.workgroups * TRACE_SUMMARY_WORKGROUP);
      // Element e = first + k·threads (first < threads, k < perThread): all of [0, elements) and no more workgroups than needed.
      expect(g.threads * g.perThread).toBeGreaterThanOrEqual(elements);
      expect((g.workgroups - 1) * TRACE_SUMMARY_WORKGROUP * g.perThread).toBeLessThan(elements);
      expect(g.groupsX * g.groupsY).toBeGreaterThanOrEqual(g.workgroups);
    }
    expect(traceSummaryGrid(1536 * 16)).toMatchObject({ perThread: 1, workgroups: 384 });
    expect(traceSummaryGrid(5120 * 16)).toMatchObject({ perThread: 3, workgroups: 427 });
    expect(traceSummaryGrid(80 * 64 * 128)).toMatchObject({ perThread: 8, workgroups: 1280 });
  });

  it('folds workgroups past the per-dimension limit into two dimensions', () => {
    expect(traceSummaryGrid(64 * 100, 30)).toMatchObject({ workgroups: 100, groupsX: 30, groupsY: 4 });
    expect(() => traceSummaryGrid(0)).toThrow(/state elements must be an integer in 1/);
  });
});
