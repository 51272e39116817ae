// Interop check of mtconn's generated TL code (layer 198, tools/tlgen) against
// an independent implementation: mtcute's TL codec from npm (@mtcute/tl
// 204.0.0 generated readers/writers, @mtcute/tl-runtime 0.24.3 primitives).
//
//   node check.mjs --vectors <build>/tests/tl_vectors [--seed N] [--count K]
//   node check.mjs --installed     exit 0 iff node_modules matches package-lock.json
//
// tl_vectors emits random valid encodings of every constructor and method of
// our schema. Each one whose id mtcute knows (ids are CRC32s of the
// definition, so a shared id means the same definition) is decoded by
// mtcute and written again by mtcute's writer; the bytes must be identical.
// mtcute ships no readers for API methods, so those are decoded by a small
// interpreter over mtcute's own api-schema.json (argument order, flags and
// types as mtcute knows them) using mtcute's TlBinaryReader primitives and
// mtcute's readers for every nested object; the bytes compared are still
// the ones mtcute's generated writer produces.
//
// Nested constructors that layer 204 lacks are avoided when generating
// (tl_vectors --allow); an object that still contains one is skipped and
// counted with its reason. Fails on any mismatch or decode error, or when
// fewer than 80% of the shared entries were compared.
//
// Self-test: MTC_TLX_CORRUPT=<entry>:<offset>[:<xor>] changes one byte of
// sample 0 of that entry before mtcute sees it (default xor 0xff).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const MIN_COMPARED = 0.8;

function die(msg) {
  console.error(`interop_mtcute_tl: ${msg}`);
  process.exit(1);
}

// ---- installed packages must be exactly the locked ones ----------------------
function installProblems() {
  const lock = JSON.parse(readFileSync(join(here, 'package-lock.json'), 'utf8'));
  const bad = [];
  for (const [path, meta] of Object.entries(lock.packages)) {
    if (!path) continue;
    let got;
    try {
      got = JSON.parse(readFileSync(join(here, path, 'package.json'), 'utf8')).version;
    } catch {
      got = 'missing';
    }
    if (got !== meta.version) bad.push(`${path.replace(/^node_modules\//, '')}: want ${meta.version}, have ${got}`);
  }
  return bad;
}

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
if (args.includes('--installed')) process.exit(installProblems().length ? 1 : 0);

const problems = installProblems();
if (problems.length)
  die(`npm packages missing or not the locked versions (run \`npm ci\` in ${here}): ${problems.join('; ')}`);

const { __tlReaderMap: readers } = require('@mtcute/tl/binary/reader.js');
const { __tlWriterMap: writers } = require('@mtcute/tl/binary/writer.js');
const apiSchema = require('@mtcute/tl/api-schema.json');
const mtpSchema = require('@mtcute/tl/mtp-schema.json');
const { TlBinaryReader, TlBinaryWriter, TlUnknownObjectError } = await import('@mtcute/tl-runtime');

const vectorsTool = opt('--vectors');
if (!vectorsTool) die('usage: node check.mjs --vectors <path to tl_vectors> [--seed N] [--count K]');
const seed = opt('--seed', '1');
const count = opt('--count', '4');

// ---- what mtcute (layer 204) knows -------------------------------------------
const layer = apiSchema.l;
// mtcute.* are mtcute's own pseudo-entries (dummy updates, customMethod), not
// TL; <name>Prefix methods (invokeWithBusinessConnectionPrefix, ...) are
// mtcute's copies of invokeWith* without the query, sharing the real id.
const all204 = [...apiSchema.e, ...mtpSchema].filter((e) => !e.name.startsWith('mtcute.'));
const names204 = new Set(all204.map((e) => e.name));
const entries204 = all204.filter((e) => !(e.name.endsWith('Prefix') && names204.has(e.name.slice(0, -6))));
const byId = new Map(); // id -> mtcute entry
for (const e of entries204) {
  if (byId.has(e.id >>> 0)) die(`mtcute ${apiSchema.l}: id ${e.id.toString(16)} used by ${byId.get(e.id >>> 0).name} and ${e.name}`);
  byId.set(e.id >>> 0, e);
}

// Ids the runtime turns into JS primitives (TlBinaryReader.object): they have
// no object writer. boolFalse/boolTrue/null at top level go through the
// runtime's boolean()/null() writers instead.
const BOOL_FALSE = 0xbc799737, BOOL_TRUE = 0x997275b5, TL_TRUE = 0x3fedd339, TL_NULL = 0x56730bcc,
  VECTOR = 0x1cb5c415;
const PRIMITIVE = new Set([BOOL_FALSE, BOOL_TRUE, TL_TRUE, TL_NULL, VECTOR]);

// mtcute's property names: snake_case -> camelCase
const camel = (s) => s.replace(/_([a-z0-9])/gi, (_, c) => c.toUpperCase());

const P = TlBinaryReader.prototype;
const PRIM_READ = {
  int: P.int, long: P.long, int53: P.int53, double: P.double, string: P.string,
  bytes: P.bytes, int128: P.int128, int256: P.int256, Bool: P.boolean,
};

// Reader for an API method, from mtcute's schema entry.
function methodReader(e) {
  const wsrc = writers[e.name] ? writers[e.name].toString() : null;
  if (!wsrc) throw new Error(`mtcute has no writer for method ${e.name}`);
  const steps = (e.arguments || []).map((a) => {
    const mods = a.typeModifiers || {};
    const step = { type: a.type, key: camel(a.name), name: a.name };
    if (mods.predicate) {
      const [field, bit] = mods.predicate.split('.');
      step.pred = { field, bit: Number(bit) };
    }
    if (a.type === '#' || a.type === 'true') return step;
    if (!wsrc.includes(`'${step.key}'`) && !wsrc.includes(`v.${step.key}`))
      throw new Error(`${e.name}: writer does not use a property ${step.key}`);
    let one = PRIM_READ[a.type];
    if (!one) {
      const last = a.type.split('.').pop();
      if (a.type.startsWith('%') || !/^[A-Z!]/.test(last))
        throw new Error(`${e.name}.${a.name}: bare type ${a.type} not handled`);
      one = P.object; // boxed type, !X, X, Object
    }
    step.read = mods.isVector ? (r) => r.vector(one, false)
      : mods.isBareVector ? (r) => r.vector(one, true)
      : (r) => one.call(r);
    return step;
  });
  return (r) => {
    const out = { _: e.name };
    const flags = {};
    for (const s of steps) {
      if (s.type === '#') {
        flags[s.name] = r.uint();
        continue;
      }
      let on = true;
      if (s.pred) {
        if (!(s.pred.field in flags)) throw new Error(`${e.name}: ${s.name} before ${s.pred.field}`);
        on = ((flags[s.pred.field] >>> s.pred.bit) & 1) === 1;
      }
      if (s.type === 'true') out[s.key] = on;
      else out[s.key] = on ? s.read(r) : undefined;
    }
    return out;
  };
}

// A defect of mtcute 204 + tl-runtime (every release): the generated writers
// for bare constructors in bare vectors are `function(w=this, v)`, but
// TlBinaryWriter.vector calls `fn.call(this, item, bare)`, so writing e.g.
// mt_future_salts (vector<%future_salt>) throws "missing required property".
// Only for that exact error those objects are written again with a vector()
// that calls the same generated function as (writer, item); they are counted
// apart ("compared via the bare-vector call fix").
const bareWriters = new Set(Object.values(writers._bare || {}));
class BareFixWriter extends TlBinaryWriter {
  vector(fn, val, bare) {
    if (!bareWriters.has(fn)) return super.vector(fn, val, bare);
    if (!bare) this.uint(VECTOR);
    this.uint(val.length);
    for (const it of val) fn.call(this, this, it);
  }
}
const BARE_DEFECT = /^Object undefined is missing required property /;

const readMap = Object.assign(Object.create(null), readers);
let methodReaders = 0;
for (const e of entries204) {
  if (e.kind !== 'method' || readMap[e.id >>> 0]) continue;
  readMap[e.id >>> 0] = methodReader(e);
  methodReaders++;
}
// Sanity of mtcute's maps themselves: every entry has a writer, every class a reader.
for (const e of entries204) {
  if (!writers[e.name]) die(`mtcute ${layer}: no writer for ${e.name}`);
  if (!readMap[e.id >>> 0]) die(`mtcute ${layer}: no reader for ${e.name}`);
}

// ---- run tl_vectors ---------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'mtc-tlx-'));
const allowPath = join(work, 'allow.txt');
writeFileSync(
  allowPath,
  [...byId.keys()].filter((id) => !PRIMITIVE.has(id)).map((id) => id.toString(16)).join('\n') + '\n',
);

let corrupt = null;
if (process.env.MTC_TLX_CORRUPT) {
  const [name, off, x] = process.env.MTC_TLX_CORRUPT.split(':');
  corrupt = { name, off: Number(off), xor: x ? Number(x) : 0xff, done: false };
}

const t0 = Date.now();
const child = spawn(vectorsTool, ['--seed', seed, '--count', count, '--allow', allowPath], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const childDone = new Promise((resolve) => {
  child.on('error', (err) => resolve({ err }));
  child.on('close', (code) => resolve({ code }));
});

const ourName = new Map(); // id -> our name (every entry appears top-level)
const stats = {
  lines: 0, ourEntries: new Set(), notShared: new Set(), notSharedLines: 0, shared: new Map(),
  compared: 0, identical: 0, skipped: 0, mismatches: [], bareFix: new Map(),
};
const pending = []; // encodings whose skip reason needs names not yet seen

function hex(b) {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function check(name, id, sample, bytes) {
  const rec = stats.shared.get(id) || { compared: 0, skipped: 0 };
  stats.shared.set(id, rec);
  const fail = (what, offset) => {
    stats.mismatches.push({ name, sample, what, offset, ours: hex(bytes) });
  };
  const r = new TlBinaryReader(readMap, bytes, 0);
  let obj;
  try {
    obj = r.object();
  } catch (err) {
    const unknown = err instanceof TlUnknownObjectError ? err.objectId >>> 0 : null;
    if (unknown !== null && !byId.has(unknown)) {
      // Decided at the end, when all our names are known: a skip only if it
      // is one of our constructors that 204 lacks, else a decode failure.
      pending.push({ id: unknown, rec, name, sample, msg: err.message, pos: r.pos, ours: hex(bytes) });
      return;
    }
    fail(`mtcute could not decode it: ${err.message} (at byte ${r.pos})`, r.pos);
    return;
  }
  if (r.pos !== bytes.length) {
    fail(`mtcute decoded ${r.pos} of ${bytes.length} bytes`, r.pos);
    return;
  }
  const size = bytes.length * 2 + 4096;
  let w = TlBinaryWriter.alloc(writers, size);
  try {
    if (id === BOOL_FALSE || id === BOOL_TRUE) w.boolean(obj);
    else if (id === TL_NULL) w.null();
    else w.object(obj);
  } catch (err) {
    let fixed = false;
    if (BARE_DEFECT.test(err.message)) {
      w = new BareFixWriter(writers, new ArrayBuffer(size));
      try {
        w.object(obj);
        fixed = true;
        stats.bareFix.set(name, (stats.bareFix.get(name) || 0) + 1);
      } catch { /* reported below with the original error */ }
    }
    if (!fixed) {
      fail(`mtcute could not encode it again: ${err.message}`, -1);
      return;
    }
  }
  const theirs = w.result();
  rec.compared++;
  stats.compared++;
  let off = -1;
  const n = Math.min(theirs.length, bytes.length);
  for (let i = 0; i < n; i++)
    if (theirs[i] !== bytes[i]) {
      off = i;
      break;
    }
  if (off < 0 && theirs.length !== bytes.length) off = n;
  if (off < 0) {
    stats.identical++;
    return;
  }
  stats.mismatches.push({
    name, sample, what: `bytes differ at offset ${off} (ours ${bytes.length} bytes, mtcute ${theirs.length})`,
    offset: off, ours: hex(bytes), theirs: hex(theirs),
  });
}

const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
const skippedIds = new Map(); // unknown nested id -> count
for await (const line of rl) {
  if (!line) continue;
  const [name, idHex, sampleStr, data] = line.split(' ');
  const id = parseInt(idHex, 16) >>> 0;
  const sample = Number(sampleStr);
  ourName.set(id, name);
  stats.lines++;
  stats.ourEntries.add(id);
  if (!byId.has(id)) {
    stats.notShared.add(id);
    stats.notSharedLines++;
    continue;
  }
  if (id === TL_TRUE) { // the runtime reads true#3fedd339 as JS `true`: no object writer
    const rec = stats.shared.get(id) || { compared: 0, skipped: 0 };
    stats.shared.set(id, rec);
    rec.skipped++;
    stats.skipped++;
    const reason = `${name} itself (mtcute's runtime decodes it as JS true, no writer)`;
    skippedIds.set(reason, (skippedIds.get(reason) || 0) + 1);
    continue;
  }
  const bytes = Uint8Array.from(Buffer.from(data || '', 'hex'));
  if (corrupt && !corrupt.done && corrupt.name === name && sample === 0) {
    if (corrupt.off >= bytes.length) die(`MTC_TLX_CORRUPT offset ${corrupt.off} >= ${bytes.length}`);
    bytes[corrupt.off] ^= corrupt.xor;
    corrupt.done = true;
    console.log(`self-test: changed byte ${corrupt.off} of ${name} sample 0 (xor 0x${corrupt.xor.toString(16)})`);
  }
  check(name, id, sample, bytes);
}
const { err, code } = await childDone;
rmSync(work, { recursive: true, force: true });
if (err) die(`cannot run ${vectorsTool}: ${err.message}`);
if (code !== 0) die(`${vectorsTool} exited with ${code}`);
if (corrupt && !corrupt.done) die(`MTC_TLX_CORRUPT: no entry named ${corrupt.name}`);

for (const p of pending) {
  if (!ourName.has(p.id)) { // not one of our ids: the bytes are wrong somewhere
    stats.mismatches.push({ name: p.name, sample: p.sample, what: `mtcute could not decode it: ${p.msg} (at byte ${p.pos})`, ours: p.ours });
    continue;
  }
  p.rec.skipped++;
  stats.skipped++;
  const reason = `nested ${ourName.get(p.id)}#${p.id.toString(16).padStart(8, '0')} is not in layer ${layer}`;
  skippedIds.set(reason, (skippedIds.get(reason) || 0) + 1);
}

// ---- report -------------------------------------------------------------------------
const sharedEntries = stats.shared.size;
let entriesCompared = 0;
const neverCompared = [];
const byKind = { class: [0, 0], method: [0, 0] }; // [shared, compared]
for (const [id, rec] of stats.shared) {
  const k = byKind[byId.get(id).kind];
  k[0]++;
  if (rec.compared > 0) {
    entriesCompared++;
    k[1]++;
  } else {
    neverCompared.push(ourName.get(id));
  }
}
const ms = Date.now() - t0;
console.log(`mtcute @mtcute/tl ${layer} (${entries204.length} entries; ${methodReaders} method readers from its schema)`);
console.log(`our entries: ${stats.ourEntries.size} (${stats.lines} encodings, seed ${seed}, ${count} per entry)`);
console.log(`not in layer ${layer} (198-only definitions, not compared): ${stats.notShared.size} entries, ${stats.notSharedLines} encodings`);
console.log(`shared entries: ${sharedEntries}, compared: ${entriesCompared} (${((100 * entriesCompared) / Math.max(1, sharedEntries)).toFixed(1)}%)`);
console.log(`  constructors ${byKind.class[1]} of ${byKind.class[0]}, methods ${byKind.method[1]} of ${byKind.method[0]}`);
console.log(`objects compared: ${stats.compared}, identical: ${stats.identical}, mismatches: ${stats.mismatches.length}, skipped: ${stats.skipped}`);
for (const [n, k] of stats.bareFix)
  console.log(`  compared via the bare-vector call fix (mtcute writer defect, see check.mjs): ${n} x${k}`);
for (const [reason, n] of [...skippedIds].sort((a, b) => b[1] - a[1]))
  console.log(`  skipped ${n}: ${reason}`);
if (neverCompared.length)
  console.log(`shared entries never compared (${neverCompared.length}): ${neverCompared.slice(0, 40).join(' ')}${neverCompared.length > 40 ? ' ...' : ''}`);
for (const m of stats.mismatches.slice(0, 20)) {
  console.log(`MISMATCH ${m.name} sample ${m.sample}: ${m.what}`);
  console.log(`  ours:   ${m.ours.slice(0, 400)}${m.ours.length > 400 ? '...' : ''}`);
  if (m.theirs) console.log(`  mtcute: ${m.theirs.slice(0, 400)}${m.theirs.length > 400 ? '...' : ''}`);
}
if (stats.mismatches.length > 20) console.log(`... and ${stats.mismatches.length - 20} more mismatches`);
console.log(`time: ${ms} ms`);

let failed = false;
if (stats.mismatches.length) {
  console.log(`FAIL: ${stats.mismatches.length} mismatches`);
  failed = true;
}
if (sharedEntries === 0 || entriesCompared < MIN_COMPARED * sharedEntries) {
  console.log(`FAIL: only ${entriesCompared} of ${sharedEntries} shared entries compared (need ${MIN_COMPARED * 100}%)`);
  failed = true;
}
console.log(failed ? 'interop_mtcute_tl: FAILED' : 'interop_mtcute_tl: OK');
process.exit(failed ? 1 : 0);
