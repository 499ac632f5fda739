// @vitest-environment node
import { describe, expect, it } from "vitest";
import { crc32 as nodeCrc32, inflateRawSync } from "node:zlib";
import { crc32, zip } from "./zip";

interface Entry {
  name: string;
  method: number;
  crc: number;
  data: Uint8Array;
}

/** Reads an archive the way unzip does: from the end record through the central directory. */
function readZip(archive: Uint8Array): Entry[] {
  const view = new DataView(archive.buffer, archive.byteOffset, archive.byteLength);
  const end = archive.length - 22;
  expect(view.getUint32(end, true)).toBe(0x06054b50);
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    expect(view.getUint32(at, true)).toBe(0x02014b50);
    expect(view.getUint16(at + 8, true) & 0x0800).toBe(0x0800);
    const method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    const compressed = view.getUint32(at + 20, true);
    const size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const local = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(archive.subarray(at + 46, at + 46 + nameLength));
    expect(view.getUint32(local, true)).toBe(0x04034b50);
    expect(view.getUint32(local + 14, true)).toBe(crc);
    const localName = view.getUint16(local + 26, true);
    const start = local + 30 + localName + view.getUint16(local + 28, true);
    const body = archive.subarray(start, start + compressed);
    const data = method === 8 ? new Uint8Array(inflateRawSync(body)) : body;
    expect(data.length).toBe(size);
    entries.push({ name, method, crc, data });
    at += 46 + nameLength;
  }
  return entries;
}

describe("zip", () => {
  it("computes the CRC-32 zip uses", () => {
    for (const text of ["", "a", "hello, 世界", "x".repeat(10_000)]) {
      const bytes = new TextEncoder().encode(text);
      expect(crc32(bytes)).toBe(nodeCrc32(bytes));
    }
  });

  it("packs files that unzip back byte for byte, deflating what shrinks", async () => {
    const encoder = new TextEncoder();
    const files = [
      { name: "settings.json", data: encoder.encode('{"format": "parley.settings"}') },
      { name: "chats/1-旅行.json", data: encoder.encode(JSON.stringify({ text: "Kyoto ".repeat(500) })) },
      { name: "empty.txt", data: new Uint8Array() },
    ];
    const entries = readZip(await zip(files));
    expect(entries.map((e) => e.name)).toEqual(files.map((f) => f.name));
    entries.forEach((entry, i) => {
      expect(entry.data).toEqual(files[i].data);
      expect(entry.crc).toBe(crc32(files[i].data));
    });
    // The repetitive chat shrinks; the empty file is stored.
    expect(entries[1].method).toBe(8);
    expect(entries[2].method).toBe(0);
  });
});
