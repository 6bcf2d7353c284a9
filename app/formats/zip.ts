/**
 * A zip reader for PyTorch checkpoints (torch.save's format since 1.6): the end of central
 * directory record (and its ZIP64 form, so offsets past 4 GiB work: a 2.8B model's .bin is
 * ~11 GB), the central directory, and each entry's local header — no decompression at all. Only
 * stored entries are accepted (torch writes nothing else): a compressed or encrypted entry, an
 * archive split over disks, an entry whose data runs past the central directory or into the next
 * entry, a duplicate name — each is a ModelFileError naming the file. An entry is a byte range of
 * the file, read later by whoever needs it (the loader streams tensors from it).
 *
 * Everything is bounded before it is read: the directory's size and entry count, every name's
 * length; every offset and size is checked against the file.
 */
import { clip, ModelFileError } from './errors.js';
import { checkRange, type ByteSource } from './source.js';

/** Entries in one archive (a .bin holds one per storage plus a few records; a 2.8B Mamba has ~650). */
export const MAX_ZIP_ENTRIES = 200_000;
/** Bytes of central directory read at once (an entry takes ~60–100 bytes). */
export const MAX_CENTRAL_DIRECTORY_BYTES = 32 * 1024 * 1024;

const EOCD_SIG = 0x06054b50;
const EOCD_BYTES = 22;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_EOCD_SIG = 0x06064b50;
const ZIP64_EOCD_BYTES = 56;
const CENTRAL_SIG = 0x02014b50;
const CENTRAL_BYTES = 46;
const LOCAL_SIG = 0x04034b50;
export const LOCAL_HEADER_BYTES = 30;
const ZIP64_EXTRA_ID = 0x0001;
/** Flag bits: 0 encrypted, 6 strong encryption, 13 central directory encrypted. */
const ENCRYPTED_FLAGS = (1 << 0) | (1 << 6) | (1 << 13);

export interface ZipEntry {
  name: string;
  /** The bytes of the name as stored (compared with the local header's). */
  nameBytes: Uint8Array;
  flags: number;
  method: number;
  size: number;
  localHeaderOffset: number;
  /** Where the next entry's local header (or the central directory) starts: the entry must end before it. */
  limit: number;
}

export interface ZipDirectory {
  file: string;
  fileSize: number;
  /** In central directory order. */
  entries: ZipEntry[];
  byName: Map<string, ZipEntry>;
  zip64: boolean;
}

const u16 = (v: DataView, at: number) => v.getUint16(at, true);
const u32 = (v: DataView, at: number) => v.getUint32(at, true);
function u64(file: string, v: DataView, at: number, what: string): number {
  const big = v.getBigUint64(at, true);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new ModelFileError(file, `zip ${what} ${big} is larger than any file`);
  return Number(big);
}
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Finds the end of central directory record in the last 64 KiB + 22 bytes of the file. */
async function findEndRecord(source: ByteSource): Promise<{ at: number; v: DataView }> {
  const file = source.name;
  if (source.size < EOCD_BYTES) throw new ModelFileError(file, `too short for a zip archive (${source.size} bytes)`);
  const tailLength = Math.min(source.size, EOCD_BYTES + 0xffff);
  const tailStart = source.size - tailLength;
  const tail = await source.read(tailStart, tailLength);
  const v = view(tail);
  // The last signature whose comment ends exactly at the end of the file.
  for (let i = tailLength - EOCD_BYTES; i >= 0; i--) {
    if (u32(v, i) === EOCD_SIG && i + EOCD_BYTES + u16(v, i + 20) === tailLength) {
      return { at: tailStart + i, v: new DataView(tail.buffer, tail.byteOffset + i, EOCD_BYTES) };
    }
  }
  throw new ModelFileError(file, 'no zip end-of-central-directory record: the file is truncated or not a zip archive');
}

/** Reads and checks the central directory (ZIP64 included). */
export async function readZipDirectory(source: ByteSource): Promise<ZipDirectory> {
  const file = source.name;
  const end = await findEndRecord(source);
  const e = end.v;
  let disk = u16(e, 4);
  let cdDisk = u16(e, 6);
  let diskEntries = u16(e, 8);
  let count = u16(e, 10);
  let cdSize = u32(e, 12);
  let cdOffset = u32(e, 16);
  let cdEnd = end.at; // the central directory must end where the next record starts
  const zip64 = count === 0xffff || diskEntries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff || disk === 0xffff || cdDisk === 0xffff;
  if (zip64) {
    if (end.at < ZIP64_LOCATOR_BYTES) throw new ModelFileError(file, 'zip64 archive without its end-of-central-directory locator');
    const locator = view(await source.read(end.at - ZIP64_LOCATOR_BYTES, ZIP64_LOCATOR_BYTES));
    if (u32(locator, 0) !== ZIP64_LOCATOR_SIG) throw new ModelFileError(file, 'zip64 archive without its end-of-central-directory locator');
    if (u32(locator, 16) > 1) throw new ModelFileError(file, 'a zip archive split over several disks; a PyTorch checkpoint is one file');
    const recordAt = u64(file, locator, 8, 'zip64 record offset');
    if (recordAt + ZIP64_EOCD_BYTES > end.at - ZIP64_LOCATOR_BYTES) {
      throw new ModelFileError(file, `zip64 end-of-central-directory record at ${recordAt} lies past its locator: the file is truncated or corrupt`);
    }
    const r = view(await source.read(recordAt, ZIP64_EOCD_BYTES));
    if (u32(r, 0) !== ZIP64_EOCD_SIG) throw new ModelFileError(file, `no zip64 end-of-central-directory record at ${recordAt}`);
    disk = u32(r, 16);
    cdDisk = u32(r, 20);
    diskEntries = u64(file, r, 24, 'entry count');
    count = u64(file, r, 32, 'entry count');
    cdSize = u64(file, r, 40, 'central directory size');
    cdOffset = u64(file, r, 48, 'central directory offset');
    cdEnd = recordAt;
  }
  if (disk !== 0 || cdDisk !== 0 || diskEntries !== count) throw new ModelFileError(file, 'a zip archive split over several disks; a PyTorch checkpoint is one file');
  if (count > MAX_ZIP_ENTRIES) throw new ModelFileError(file, `zip archive lists ${count} entries, more than any model checkpoint (limit ${MAX_ZIP_ENTRIES})`);
  if (cdSize > MAX_CENTRAL_DIRECTORY_BYTES) throw new ModelFileError(file, `zip central directory of ${cdSize} bytes is larger than any model checkpoint's (limit ${MAX_CENTRAL_DIRECTORY_BYTES})`);
  if (cdSize < count * CENTRAL_BYTES) throw new ModelFileError(file, `zip central directory of ${cdSize} bytes cannot hold ${count} entries`);
  if (cdOffset + cdSize > cdEnd) {
    throw new ModelFileError(file, `zip central directory (bytes ${cdOffset}–${cdOffset + cdSize}) runs past where it must end (${cdEnd}): the file is truncated or corrupt`);
  }
  checkRange(source, cdOffset, cdSize, 'zip central directory');
  const cd = await source.read(cdOffset, cdSize);
  const v = view(cd);
  const names = new TextDecoder('utf-8', { fatal: true });
  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + CENTRAL_BYTES > cdSize || u32(v, at) !== CENTRAL_SIG) throw new ModelFileError(file, `zip central directory entry ${i} is corrupt (no signature at byte ${cdOffset + at})`);
    const flags = u16(v, at + 8);
    const method = u16(v, at + 10);
    let compressed = u32(v, at + 20);
    let size = u32(v, at + 24);
    const nameLength = u16(v, at + 28);
    const extraLength = u16(v, at + 30);
    const commentLength = u16(v, at + 32);
    let entryDisk = u16(v, at + 34);
    let localHeaderOffset = u32(v, at + 42);
    const next = at + CENTRAL_BYTES + nameLength + extraLength + commentLength;
    if (next > cdSize) throw new ModelFileError(file, `zip central directory entry ${i} runs past the directory`);
    const nameBytes = cd.subarray(at + CENTRAL_BYTES, at + CENTRAL_BYTES + nameLength);
    let name: string;
    try {
      name = names.decode(nameBytes);
    } catch {
      throw new ModelFileError(file, `zip entry ${i}: its name is not UTF-8`);
    }
    const bad = (problem: string) => new ModelFileError(file, `zip entry "${clip(name, 120)}": ${problem}`);
    // ZIP64 extended information: the fields whose 32-bit value is all ones, in this order.
    if (size === 0xffffffff || compressed === 0xffffffff || localHeaderOffset === 0xffffffff || entryDisk === 0xffff) {
      let x = at + CENTRAL_BYTES + nameLength;
      const extraEnd = x + extraLength;
      let found = false;
      while (x + 4 <= extraEnd) {
        const id = u16(v, x);
        const length = u16(v, x + 2);
        if (x + 4 + length > extraEnd) break;
        if (id === ZIP64_EXTRA_ID) {
          let p = x + 4;
          const take = (what: string) => {
            if (p + 8 > x + 4 + length) throw bad(`its zip64 field lacks the ${what}`);
            const value = u64(file, v, p, what);
            p += 8;
            return value;
          };
          if (size === 0xffffffff) size = take('size');
          if (compressed === 0xffffffff) compressed = take('compressed size');
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('local header offset');
          if (entryDisk === 0xffff) {
            if (p + 4 > x + 4 + length) throw bad('its zip64 field lacks the disk number');
            entryDisk = u32(v, p);
          }
          found = true;
          break;
        }
        x += 4 + length;
      }
      if (!found) throw bad('sizes need a zip64 field, which is missing');
    }
    if (entryDisk !== 0) throw bad('lies on another disk of a split archive');
    if ((flags & ENCRYPTED_FLAGS) !== 0) throw bad('is encrypted; a PyTorch checkpoint stores its entries as they are');
    if (method !== 0) throw bad(`is compressed (method ${method}); a PyTorch checkpoint stores its entries uncompressed, and the studio reads only those`);
    if (compressed !== size) throw bad(`stored entry whose compressed size ${compressed} ≠ its size ${size}`);
    if (localHeaderOffset + LOCAL_HEADER_BYTES + nameLength + size > cdOffset) {
      throw bad(`its data (${size} bytes from byte ${localHeaderOffset}) runs past the start of the central directory (${cdOffset}): the file is truncated or corrupt`);
    }
    if (byName.has(name)) throw bad('appears twice in the archive');
    const entry: ZipEntry = { name, nameBytes, flags, method, size, localHeaderOffset, limit: cdOffset };
    entries.push(entry);
    byName.set(name, entry);
    at = next;
  }
  // Entries must not overlap: each must end (by what the central directory says) before the next one's local header.
  const sorted = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i] as ZipEntry;
    const b = sorted[i + 1];
    if (!b) break;
    a.limit = b.localHeaderOffset;
    if (a.localHeaderOffset + LOCAL_HEADER_BYTES + a.nameBytes.length + a.size > b.localHeaderOffset) {
      throw new ModelFileError(file, `zip entries "${clip(a.name, 120)}" and "${clip(b.name, 120)}" overlap`);
    }
  }
  return { file, fileSize: source.size, entries, byName, zip64 };
}

/**
 * Where an entry's data lies in the file: reads its local header (its name and extra field may be
 * longer than the central directory's: torch pads the extra field to align data to 64 bytes) and
 * checks it against the directory.
 */
export async function zipEntryData(source: ByteSource, entry: ZipEntry): Promise<{ offset: number; length: number }> {
  const file = source.name;
  const bad = (problem: string) => new ModelFileError(file, `zip entry "${clip(entry.name, 120)}": ${problem}`);
  const headerLength = LOCAL_HEADER_BYTES + entry.nameBytes.length;
  if (entry.localHeaderOffset + headerLength > entry.limit) throw bad('its local header runs into the next entry');
  const header = await source.read(entry.localHeaderOffset, headerLength);
  const v = view(header);
  if (u32(v, 0) !== LOCAL_SIG) throw bad(`no local header at byte ${entry.localHeaderOffset}`);
  const flags = u16(v, 6);
  if ((flags & ENCRYPTED_FLAGS) !== 0) throw bad('is encrypted');
  if (u16(v, 8) !== entry.method) throw bad('its local header names another compression method than the central directory');
  const nameLength = u16(v, 26);
  const extraLength = u16(v, 28);
  if (nameLength !== entry.nameBytes.length || !header.subarray(LOCAL_HEADER_BYTES).every((b, i) => b === entry.nameBytes[i])) {
    throw bad('its local header names another file than the central directory');
  }
  const offset = entry.localHeaderOffset + LOCAL_HEADER_BYTES + nameLength + extraLength;
  if (offset + entry.size > entry.limit) {
    throw bad(`its data (bytes ${offset}–${offset + entry.size}) runs past the next entry or the central directory (byte ${entry.limit})`);
  }
  checkRange(source, offset, entry.size, `zip entry "${clip(entry.name, 120)}"`);
  return { offset, length: entry.size };
}
