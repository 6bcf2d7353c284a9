/**
 * Downloads of the data behind a panel: CSV, NPY and raw bytes through one link-click helper
 * (an <a download> click: the browser's download in web mode; Electron's default download handling,
 * a save dialog, in the desktop app), and PNG of a canvas.
 *
 * CSV of the data behind a panel (RFC 4180: comma-separated, CRLF rows, fields with commas,
 * quotes or line breaks quoted). Numbers are written with JavaScript's shortest round-trip form,
 * so they parse back to the same double (and float32 values to the same float32); NaN and ±∞
 * as NaN / Infinity / -Infinity, which Number() reads back.
 */
import { encodeNpy, type NpyArray } from '../../../app/formats/npy';

export interface CsvColumn {
  name: string;
  values: ArrayLike<number | string>;
}

const field = (v: number | string): string => {
  const s = typeof v === 'number' ? String(v) : v;
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
};

/** One header row of the column names, then one row per index (columns must have equal lengths). */
export function toCsv(columns: readonly CsvColumn[]): string {
  const rows = columns[0]?.values.length ?? 0;
  for (const c of columns) if (c.values.length !== rows) throw new RangeError(`toCsv: column ${c.name} has ${c.values.length} values, not ${rows}`);
  const lines = [columns.map((c) => field(c.name)).join(',')];
  for (let r = 0; r < rows; r++) lines.push(columns.map((c) => field(c.values[r] as number | string)).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** Parses CSV written by toCsv (or any RFC 4180 CSV) into rows of fields. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cur);
      cur = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cur);
      rows.push(row);
      row = [];
      cur = '';
    } else cur += ch;
  }
  if (cur !== '' || row.length > 0) {
    row.push(cur);
    rows.push(row);
  }
  return rows;
}

/** Saves `blob` as a file named `name` through a temporary link (the browser's download). */
export function downloadBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Downloads an array as a NumPy .npy file named `name` (app/formats/npy.ts: '<f4' or '<i4', C order). */
export const downloadNpy = (array: NpyArray, name: string) => downloadBytes(encodeNpy(array), name, 'application/octet-stream');

/** Downloads bytes (NPY, safetensors) as `name`. */
export function downloadBytes(bytes: Uint8Array, name: string, type = 'application/octet-stream'): void {
  // A copy into a fresh ArrayBuffer: Blob parts must not be views of shared or larger buffers.
  downloadBlob(new Blob([bytes.slice().buffer as ArrayBuffer], { type }), name);
}

/** Downloads the CSV text as `name`. */
export const downloadCsv = (csv: string, name: string) => downloadBlob(new Blob([csv], { type: 'text/csv' }), name);
