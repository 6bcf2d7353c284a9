/**
 * The trail's piece length (app/analysis/trace-trail.ts trailPiece): TRAIL_PIECE tokens unless the
 * model's chunk, the sink's rows, the trace's capacity or the logits' cap (TRAIL_LOGITS_BYTES of
 * vocab-wide fp32 rows) are smaller; a wanted length (the bench's --trail-piece) replaces
 * TRAIL_PIECE and the logits' cap, never the others.
 */
import { describe, expect, it } from 'vitest';
import { TRAIL_LOGITS_BYTES, TRAIL_PIECE, trailPiece, trailBytes } from '../../app/analysis/trace-trail';

describe('trailPiece', () => {
  it('takes TRAIL_PIECE tokens, fewer where the chunk, the sink, the capacity or the logits cap are smaller', () => {
    expect(trailPiece(2048, 100_000, 256)).toBe(TRAIL_PIECE);
    expect(trailPiece(100, 100_000, 256)).toBe(100);
    expect(trailPiece(2048, 100_000, 256, 77)).toBe(77);
    expect(trailPiece(2048, 9, 256)).toBe(9);
    const rowsInCap = Math.floor(TRAIL_LOGITS_BYTES / (131_072 * 4)); // a 131,072-token vocabulary: 128 rows in 64 MiB
    expect(trailPiece(2048, 100_000, 131_072)).toBe(Math.min(TRAIL_PIECE, rowsInCap));
    expect(trailPiece(0, 0, 256)).toBe(1);
  });

  it('a wanted length replaces TRAIL_PIECE and the logits cap, but not the chunk, the sink or the capacity', () => {
    expect(trailPiece(2048, 100_000, 50_280, Infinity, 1024)).toBe(1024);
    expect(trailBytes(50_280, 1024, 0)).toBe(1024 * 50_280 * 4); // over TRAIL_LOGITS_BYTES: the caller asked for it
    expect(trailPiece(512, 100_000, 50_280, Infinity, 1024)).toBe(512);
    expect(trailPiece(2048, 100_000, 50_280, 300, 1024)).toBe(300);
    expect(trailPiece(2048, 700, 50_280, Infinity, 1024)).toBe(700);
  });
});
