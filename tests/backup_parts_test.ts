import * as assert from "node:assert/strict";
import { backupBaseName, freshBase } from "../core/flasher/backup_name.ts";
import { parseSidecar, sameChip, sidecarOf } from "../core/flasher/sidecar.ts";
import { type BackupStore, MemoryStore, openWriter, storedSource } from "../core/flasher/store.ts";

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

/** A store with only the two required members, as a minimal host would write it. */
function putOnlyStore(): BackupStore & { entries: Map<string, Uint8Array> } {
  const entries = new Map<string, Uint8Array>();
  return {
    entries,
    put(name, data) {
      entries.set(name, data.slice());
      return Promise.resolve(`at/${name}`);
    },
    get(location) {
      const d = entries.get(location.replace(/^at\//, ""));
      return d ? Promise.resolve(d.slice()) : Promise.reject(new Error(`no ${location}`));
    },
  };
}

Deno.test("store: a put-only store gets the pieces joined on commit, nothing on abort", async () => {
  const store = putOnlyStore();
  const buf = Uint8Array.of(1, 2, 3);
  const w = await openWriter(store, "a.bin");
  await w.write(buf);
  buf.set([7, 8, 9]); // the caller reuses its buffer
  await w.write(buf);
  assert.equal(store.entries.size, 0);
  assert.equal(await w.commit(), "at/a.bin");
  assert.deepEqual([...store.entries.get("a.bin")!], [1, 2, 3, 7, 8, 9]);
  const dropped = await openWriter(store, "b.bin");
  await dropped.write(buf);
  await dropped.abort();
  assert.equal(store.entries.has("b.bin"), false);
});

Deno.test("store: storedSource reads ranges of an entry, clipped to its size, with or without read()", async () => {
  const data = Uint8Array.from({ length: 100 }, (_, i) => i);
  const plain = putOnlyStore();
  await plain.put("x", data);
  const mem = new MemoryStore();
  await mem.put("x", data);
  for (const [store, location] of [[plain, "at/x"], [mem, "x"]] as const) {
    const src = storedSource(store, location, 90);
    assert.equal(src.size, 90);
    assert.deepEqual([...await src.read(10, 3)], [10, 11, 12]);
    assert.deepEqual([...await src.read(88, 10)], [88, 89]);
  }
});

Deno.test("store: MemoryStore lists, reads, removes, and refuses a missing entry", async () => {
  const store = new MemoryStore();
  await store.put("a", Uint8Array.of(1, 2, 3, 4));
  await store.put("b", Uint8Array.of(5));
  assert.deepEqual(await store.list(), [{ name: "a", location: "a" }, { name: "b", location: "b" }]);
  assert.deepEqual([...await store.read("a", 1, 2)], [2, 3]);
  await store.remove("a");
  await assert.rejects(store.get("a"), /no entry a/);
  await assert.rejects(store.read("a", 0, 1), /no entry a/);
});

Deno.test("sidecar: only this tool's sidecars parse; sameChip needs chip, flash ID and key alike", () => {
  const identity = { chip: "BK7231N", flashId: "eb6015", key: "510fb093 a3cbeadc 5993a17e c7adeb03" };
  const sidecar = sidecarOf(identity, new Date("2026-11-22T01:30:12Z"), "f.bin", 0x200000, 0x1234);
  assert.equal(sidecar.crc32, "00001234");
  assert.deepEqual(parseSidecar(enc(sidecar)), sidecar);
  assert.equal(parseSidecar(enc({ ...sidecar, tool: "other" })), null);
  assert.equal(parseSidecar(enc({ ...sidecar, file: 3 })), null);
  assert.equal(parseSidecar(new TextEncoder().encode("{ torn")), null);
  assert.equal(sameChip(sidecar, identity), true);
  assert.equal(sameChip(sidecar, { ...identity, chip: "BK7231M" }), false);
  assert.equal(sameChip(sidecar, { ...identity, flashId: "c84015" }), false);
  assert.equal(sameChip(sidecar, { ...identity, key: null }), false);
});

Deno.test("names: a base name is safe for files; a second job in the same second gets -2, then -3", async () => {
  const at = new Date("2026-11-22T01:30:12.345Z");
  assert.equal(
    backupBaseName({ chip: "SPI flash/x", flashId: null, key: null }, at),
    "SPI-flash-x_noid_20261122T013012Z",
  );
  const identity = { chip: "BK7231N", flashId: "eb6015", key: null };
  const store = new MemoryStore();
  const base = "BK7231N_eb6015_20261122T013012Z";
  assert.equal(await freshBase(store, identity, at), base);
  await store.put(`${base}.bin`, new Uint8Array(1));
  assert.equal(await freshBase(store, identity, at), `${base}-2`);
  await store.put(`${base}-2.json`, new Uint8Array(1));
  assert.equal(await freshBase(store, identity, at), `${base}-3`);
  // a store that cannot list (or fails to) keeps the plain name
  const failing: BackupStore = { ...putOnlyStore(), list: () => Promise.reject(new Error("x")) };
  assert.equal(await freshBase(failing, identity, at), base);
  assert.equal(await freshBase(putOnlyStore(), identity, at), base);
});
