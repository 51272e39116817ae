#!/usr/bin/env node
/*
 * Interop: mtcute (an independent TypeScript MTProto client, @mtcute/node +
 * @mtcute/core, versions pinned in package-lock.json) against mtconn-mockdc.
 *
 * If mtcute cannot talk to the mock, one of them is wrong; the mock is never
 * bent for mtcute. Only mtcute's raw API is used (client.call with raw TL
 * objects), no login flows. mtcute's own layer is 227; it announces layer 198
 * (overrideLayer) because the mock refuses layers it has no layouts for, and
 * only calls whose constructors are identical in both layers are made:
 * invokeWithLayer#da9b0d0d, initConnection#c1cd5ea9, help.getNearestDc#1fb33026
 * -> nearestDc#8e1a1775, auth.sendCode#a677244f (codeSettings#ad253d78) ->
 * auth.sentCode#5e002502 / sentCodeTypeApp#3dbb5986, auth.signIn#8d52a951 ->
 * rpc_error. mtcute pings with ping_delay_disconnect on its own (its first
 * flush carries one); pongs are counted from its log.
 *
 * Cases (each a fresh client with MemoryStorage = a new auth key, on the home
 * DC 5, so no *_MIGRATE error makes mtcute switch DCs):
 *   direct/<codec>   intermediate (mtcute's default TcpTransport), padded
 *                    intermediate, obfuscated2 + intermediate, obfuscated2 +
 *                    padded intermediate: auth key creation with the mock's
 *                    RSA key (addPublicKey), pong, help.getNearestDc,
 *                    auth.sendCode -> sentCode, auth.signIn with a wrong code
 *                    -> RpcError 400 PHONE_CODE_INVALID, and the mock's
 *                    per-DC counters for exactly that.
 *   mtproxy/plain, mtproxy/dd, mtproxy/ee   the same through the mock MTProxy
 *                    (mtconn-mockdc --proxy) with mtcute's MtProxyTcpTransport;
 *                    ee = fake TLS: mtcute checks the proxy's ServerHello
 *                    layout and its HMAC digest, the mock checks mtcute's
 *                    ClientHello digest, timestamp and SNI. Plus the proxy's
 *                    stats (hellos, handshakes, relayed DC, no rejects).
 *   mtproxy/ee-wrong-secret    a wrong secret: the proxy rejects the hello
 *                    (rejects.tls_digest), mtcute connects nowhere.
 *   mtproxy/ee-tampered-hello  a relay in this script flips one byte of the
 *                    proxy's ServerHello digest: mtcute must refuse it ("Response
 *                    hash is invalid"), which shows the ee case's pass means
 *                    mtcute verified the digest the mock computed.
 *   counters         the mock's totals agree with everything mtcute did.
 *
 * Usage: node interop.mjs --mockdc PATH [--timeout S] [--only PREFIXES]
 *                         [--verbose] [--keep] [--log-file F] [--selftest-wrong-ee-secret]
 * --log-file F writes mtcute's whole log (all levels) to F.
 * node interop.mjs --check-installed: exit 0 when node_modules holds exactly
 * the versions of package-lock.json (./run.sh test runs npm ci otherwise).
 * --selftest-wrong-ee-secret makes the positive ee case use a wrong secret
 * (the run must then fail). Ends with "interop_mtcute: N passed, N failed";
 * exit 1 on any failure, including missing node packages (npm ci).
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

const API_ID = 12345
const API_HASH = '0123456789abcdef0123456789abcdef'
const PHONE = '+15550000005' // lives on the home DC
const WRONG_CODE = '54321'
const HOME_DC = 5
const FILES_DC = 1
const NEAREST_DC = 4
const MOCK_LAYER = 198
const PROXY_SECRET = '0123456789abcdef0123456789abcdef'
const TLS_DOMAIN = 'example.com'
const EE_SECRET = 'ee' + PROXY_SECRET + Buffer.from(TLS_DOMAIN).toString('hex')
const WRONG_SECRET = 'fedcba9876543210fedcba9876543210'

// mtcute 0.30.3 (authorization.js) takes auth_key = bigint.toBytes(g_a^b mod
// dh_prime) with no length, so a key below 2^2040 (1 in 256) loses its
// leading zero byte(s); its auth_key_aux_hash and the new_nonce_hash1 it
// expects then differ from the server's (the key is 256 bytes, PROTOCOL.md),
// and it throws this after the server counted a completed handshake. mtcute
// reconnects and makes a new key by itself; the test counts such retries
// (server handshakes == mtcute keys + failed generations) and notes them.
const KEYGEN_BUG = 'Step 4: invalid nonce hash from server'
const KEYGEN_NOTE = 'mtcute bug: a DH key with a leading zero byte is shortened (bigint.toBytes without ' +
  'length in authorization.js), so new_nonce_hash1 mismatches ("' + KEYGEN_BUG + '"); ' +
  'mtcute retries with a new key. Not a mock bug (same as Telethon 1.25).'

// ---- arguments ------------------------------------------------------------------------

function parseArgs(argv) {
  const a = { mockdc: '', timeout: 20, only: '', verbose: false, keep: false, budget: 200,
    selftestWrongEe: false }
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`)
      return argv[++i]
    }
    if (k === '--mockdc') a.mockdc = val()
    else if (k === '--timeout') a.timeout = Number(val())
    else if (k === '--budget') a.budget = Number(val())
    else if (k === '--only') a.only = val()
    else if (k === '--verbose') a.verbose = true
    else if (k === '--keep') a.keep = true
    else if (k === '--log-file') a.logFile = val()
    else if (k === '--selftest-wrong-ee-secret') a.selftestWrongEe = true
    else throw new Error(`unknown argument ${k}`)
  }
  if (!a.mockdc) throw new Error('--mockdc PATH is required')
  if (!(a.timeout > 0)) throw new Error('--timeout must be > 0')
  return a
}

// ---- results --------------------------------------------------------------------------

class Results {
  passed = 0
  failed = 0
  failures = []
  notes = []
  cases = []

  check(name, ok, detail = '') {
    if (ok) {
      this.passed++
      console.log(`PASS  ${name}${detail ? `  (${detail})` : ''}`)
    } else {
      this.failed++
      this.failures.push(`${name}: ${detail}`)
      console.log(`FAIL  ${name}${detail ? `  -- ${detail}` : ''}`)
    }
    return ok
  }

  eq(name, got, want, hint = '') {
    const g = JSON.stringify(got)
    const w = JSON.stringify(want)
    return this.check(name, g === w, g === w ? `got ${g}` : `got ${g}, want ${w}${hint ? `; ${hint}` : ''}`)
  }

  note(text) {
    if (this.notes.includes(text)) return
    this.notes.push(text)
    console.log(`NOTE  ${text}`)
  }
}

// Every await is bounded.
function within(promise, ms, what) {
  let timer
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, t]).finally(() => clearTimeout(timer))
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function waitFor(cond, ms, step = 20) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await sleep(step)
  }
  return cond()
}

// ---- the mock as a child process (as tests/interop/mockdc_process.py) ----------------

class MockDC {
  constructor(prog, workdir, extraArgs, verbose) {
    this.prog = prog
    this.workdir = workdir
    this.keysDir = path.join(workdir, 'keys')
    this.stderrPath = path.join(workdir, 'mockdc.stderr')
    this.extraArgs = extraArgs
    this.verbose = verbose
    this.proc = null
    this.buf = ''
    this.waiters = []
    this.exited = null
    this.ports = {}
    this.proxies = []
  }

  async start(timeoutMs) {
    fs.mkdirSync(this.keysDir, { recursive: true })
    const args = ['--json-ports', '--print-public-keys', this.keysDir,
      '--counters-file', path.join(this.workdir, 'counters.json'), ...this.extraArgs]
    if (this.verbose) args.push('--verbose')
    const errFd = fs.openSync(this.stderrPath, 'w')
    this.proc = spawn(this.prog, args, { stdio: ['pipe', 'pipe', errFd] })
    fs.closeSync(errFd)
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, sig) => resolve(code ?? (sig ? `signal ${sig}` : null)))
      this.proc.on('error', (e) => resolve(`spawn error: ${e.message}`))
    })
    this.proc.stdout.setEncoding('utf8')
    this.proc.stdout.on('data', (d) => {
      this.buf += d
      this.wake()
    })
    this.proc.stdout.on('end', () => {
      this.closed = true
      this.wake()
    })
    const info = JSON.parse(await this.readLine(timeoutMs))
    for (const d of info.dcs) this.ports[d.id] = d.port
    this.proxies = info.proxies ?? []
    return info
  }

  wake() {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  async readLine(timeoutMs) {
    const end = Date.now() + timeoutMs
    for (;;) {
      const i = this.buf.indexOf('\n')
      if (i >= 0) {
        const line = this.buf.slice(0, i)
        this.buf = this.buf.slice(i + 1)
        return line
      }
      if (this.closed) throw new Error('mtconn-mockdc: stdout closed')
      const left = end - Date.now()
      if (left <= 0) throw new Error(`mtconn-mockdc: no answer within ${timeoutMs / 1000} s`)
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  async command(cmd, timeoutMs = 20000) {
    this.proc.stdin.write(cmd + '\n')
    return JSON.parse(await this.readLine(timeoutMs))
  }

  counters() {
    return this.command('counters')
  }

  async proxyStats() {
    return (await this.command('proxies')).proxies.map((p) => p.stats)
  }

  publicKeys() {
    const out = {}
    for (const dc of Object.keys(this.ports)) {
      out[dc] = fs.readFileSync(path.join(this.keysDir, `dc${dc}.pub.pem`), 'utf8')
    }
    return out
  }

  // quit, then SIGTERM, then SIGKILL; every wait bounded.
  async stop() {
    const p = this.proc
    if (!p) return null
    if (p.exitCode === null && p.signalCode === null) {
      try {
        p.stdin.write('quit\n')
        p.stdin.end()
      } catch { /* already gone */ }
      const grace = (ms) => within(this.exited, ms, 'mock exit').then(() => true, () => false)
      if (!(await grace(10000))) {
        p.kill('SIGTERM')
        if (!(await grace(5000))) {
          p.kill('SIGKILL')
          await grace(5000)
        }
      }
    }
    return within(this.exited, 5000, 'mock exit').catch(() => 'no exit')
  }

  killNow() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL')
    }
  }

  stderrTail(n = 40) {
    try {
      return fs.readFileSync(this.stderrPath, 'utf8').split('\n').slice(-n).join('\n')
    } catch {
      return ''
    }
  }
}

function dcCounters(c, dc) {
  const d = c.dcs.find((x) => x.id === dc)
  if (!d) throw new Error(`no counters for DC ${dc}`)
  return d
}

// after - before, for one DC's counters or one proxy's stats (numbers and name maps).
function delta(after, before) {
  const out = {}
  for (const [k, v] of Object.entries(after)) {
    const b = before[k]
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const m = {}
      for (const [n, c] of Object.entries(v)) {
        const d = c - ((b ?? {})[n] ?? 0)
        if (d) m[n] = d
      }
      out[k] = m
    } else if (typeof v === 'number' && typeof b === 'number') {
      out[k] = v - b
    } else {
      out[k] = v
    }
  }
  return out
}

// ---- mtcute's log, counted ---------------------------------------------------------------

// Every client logs through one LogManager whose handler counts what the
// session layer reports: keys made, pongs, each received service message by
// TL name, warnings/errors (kept for the report).
class MtcuteLog {
  constructor(verbose) {
    this.verbose = verbose
    this.reset()
  }

  reset() {
    this.keysOk = 0
    this.keygenFailed = 0 // mtcute's zero-byte-key bug, see KEYGEN_BUG
    this.helloRefusals = 0 // fake-TLS ServerHello digest mismatches mtcute reported
    this.pongs = 0
    this.received = {}
    this.warnings = []
    this.lines = []
  }

  snapshot() {
    return { keysOk: this.keysOk, keygenFailed: this.keygenFailed, pongs: this.pongs,
      received: { ...this.received }, warnings: this.warnings.length }
  }

  handler(_color, level, tag, fmt, args) {
    let text = fmt
    try {
      let i = 0
      text = fmt.replace(/%[a-z]/g, () => {
        const v = args[i++]
        if (v instanceof Uint8Array) return Buffer.from(v).toString('hex').slice(0, 64)
        if (v instanceof Error) return v.message
        return typeof v === 'object' ? JSON.stringify(v, (_k, x) =>
          (typeof x === 'bigint' ? String(x) : x)) ?? String(v) : String(v)
      })
      for (const v of args.slice(i)) text += ` ${v instanceof Error ? v.message : String(v)}`
    } catch { /* keep fmt */ }
    // fmt arrives with the logger's "[DC 5] [MAIN] ..." prefix in front and
    // %h/%b/%j/%l/%e already filled in (mtcute's Logger.log).
    if (fmt.endsWith('] authorization successful')) this.keysOk++
    else if (fmt.includes('] Authorization error') && text.includes(KEYGEN_BUG)) this.keygenFailed++
    else if (fmt.includes('] received pong: ')) this.pongs++
    else if (/\] received %s \(msg_id: -?\d+\)$/.test(fmt)) {
      const name = String(args[0])
      this.received[name] = (this.received[name] ?? 0) + 1
    }
    if (text.includes('Response hash is invalid')) this.helloRefusals++
    if (level <= 2) this.warnings.push(`[${tag}] ${text}`)
    this.lines.push(`${level} [${tag}] ${text}`)
    if (this.logFd !== undefined) fs.writeSync(this.logFd, `${level} [${tag}] ${text}\n`)
    if (this.lines.length > 400) this.lines.shift()
    if (this.verbose && level <= 3) console.log(`  mtcute ${level} [${tag}] ${text}`)
  }
}

// ---- the test -----------------------------------------------------------------------------

class Interop {
  constructor(args, mock, res, mlog, mt) {
    this.args = args
    this.mock = mock
    this.res = res
    this.mlog = mlog
    this.mt = mt // the imported mtcute modules
    this.T = args.timeout * 1000
    this.expectMethods = {} // method -> count mtcute sent on purpose
    this.expectErrors = {}
    this.connections = 0 // successful mtcute connections to a DC (direct or relayed)
  }

  bump(table, name, n = 1) {
    table[name] = (table[name] ?? 0) + n
  }

  client(dc, transport) {
    const { BaseTelegramClient, MemoryStorage, NodePlatform, LogManager } = this.mt
    const platform = new NodePlatform()
    const logger = new LogManager('client', platform)
    logger.level = 5 // everything, into MtcuteLog
    logger.handler = this.mlog.handler.bind(this.mlog)
    const addr = { id: dc, ipAddress: '127.0.0.1', port: this.mock.ports[dc] }
    return new BaseTelegramClient({
      apiId: API_ID,
      apiHash: API_HASH,
      storage: new MemoryStorage(),
      platform,
      logger,
      transport,
      defaultDcs: { main: addr, media: { ...addr, mediaOnly: true } },
      overrideLayer: MOCK_LAYER,
      disableUpdates: true,
      updates: false,
    })
  }

  transport(kind, secret) {
    const { TcpTransport, MtProxyTcpTransport, IntermediatePacketCodec, PaddedIntermediatePacketCodec,
      ObfuscatedPacketCodec } = this.mt
    const codec = {
      intermediate: null, // mtcute's default
      padded: () => new PaddedIntermediatePacketCodec(),
      'obfuscated-intermediate': () => new ObfuscatedPacketCodec(new IntermediatePacketCodec()),
      'obfuscated-padded': () => new ObfuscatedPacketCodec(new PaddedIntermediatePacketCodec()),
    }
    if (kind === 'mtproxy') {
      return new MtProxyTcpTransport({ host: '127.0.0.1', port: secret.port, secret: secret.secret })
    }
    const make = codec[kind]
    if (!make) return new TcpTransport()
    const t = new TcpTransport()
    t.packetCodec = make
    return t
  }

  async destroy(c, name) {
    try {
      await within(c.destroy(), 10000, `${name}: destroy`)
    } catch (e) {
      this.res.note(`${name}: ${e.message}`)
    }
  }

  // auth key + pong + getNearestDc + sendCode + signIn(wrong code); returns
  // what mtcute logged meanwhile.
  async session(name, c) {
    const r = this.res
    await within(c.connect(), this.T, `${name}: connect`)
    const near = await within(c.call({ _: 'help.getNearestDc' }, { timeout: this.T }), this.T,
      `${name}: help.getNearestDc`)
    this.connections++
    this.bump(this.expectMethods, 'help.getNearestDc')
    r.check(`${name} help.getNearestDc`, near._ === 'nearestDc' && near.thisDc === HOME_DC &&
      near.nearestDc === NEAREST_DC,
    `${near._} this_dc=${near.thisDc} nearest_dc=${near.nearestDc} country=${near.country}`)
    const pong = await waitFor(() => this.mlog.pongs > this.pongs0, this.T)
    r.check(`${name} pong for mtcute's ping_delay_disconnect`, pong,
      pong ? `${this.mlog.pongs - this.pongs0} pong(s)` : 'no pong logged')
    const sent = await within(c.call({
      _: 'auth.sendCode', phoneNumber: PHONE, apiId: API_ID, apiHash: API_HASH,
      settings: { _: 'codeSettings' },
    }, { timeout: this.T }), this.T, `${name}: auth.sendCode`)
    this.bump(this.expectMethods, 'auth.sendCode')
    r.check(`${name} auth.sendCode -> auth.sentCode`, sent._ === 'auth.sentCode' &&
      sent.type?._ === 'auth.sentCodeTypeApp' && sent.phoneCodeHash.length > 0,
    `${sent._} type=${sent.type?._} length=${sent.type?.length} hash=${sent.phoneCodeHash?.length} chars`)
    let err = null
    try {
      const got = await within(c.call({
        _: 'auth.signIn', phoneNumber: PHONE, phoneCodeHash: sent.phoneCodeHash, phoneCode: WRONG_CODE,
      }, { timeout: this.T }), this.T, `${name}: auth.signIn`)
      err = new Error(`no error: ${got._}`)
    } catch (e) {
      err = e
    }
    this.bump(this.expectMethods, 'auth.signIn')
    const isRpc = err?.constructor?.name === 'RpcError' && typeof err.code === 'number'
    r.check(`${name} auth.signIn (wrong code) -> RpcError 400 PHONE_CODE_INVALID`,
      isRpc && err.code === 400 && err.text === 'PHONE_CODE_INVALID',
      `${err?.constructor?.name}: ${err?.code} ${err?.text ?? err?.message}`)
    if (isRpc) this.bump(this.expectErrors, `${err.code} ${err.text}`)
  }

  // Server-side counts on the home DC for one fresh client session.
  checkDcCounters(name, d, ld, transport) {
    const r = this.res
    r.check(`${name} server: connections accepted`, d.tcp_accepted >= 1, `tcp_accepted +${d.tcp_accepted}`)
    r.eq(`${name} server: handshakes == mtcute key generations (ok + failed)`, d.handshakes_perm,
      ld.keysOk + ld.keygenFailed, `mtcute: ${ld.keysOk} ok, ${ld.keygenFailed} failed`)
    if (ld.keygenFailed) {
      r.note(KEYGEN_NOTE)
      r.note(`${name}: ${ld.keygenFailed} failed key generation(s) (mtcute zero-byte-key bug), retried`)
    }
    r.eq(`${name} mtcute: one new auth key`, ld.keysOk, 1)
    r.eq(`${name} server: handshake failures`, d.handshake_failures, 0)
    r.eq(`${name} server: transport "${transport}"`, d.transports, { [transport]: d.tcp_accepted })
    r.eq(`${name} server: sessions created`, d.sessions_created, 1)
    r.eq(`${name} mtcute: new_session_created received`, ld.received.mt_new_session_created ?? 0, 1)
    const salts = ld.received.mt_bad_server_salt ?? 0
    const badMsgs = ld.received.mt_bad_msg_notification ?? 0
    r.eq(`${name} server: bad_msgs_sent == bad_server_salt + bad_msg_notification mtcute got`,
      d.bad_msgs_sent, salts + badMsgs, `mtcute got ${salts} bad_server_salt, ${badMsgs} bad_msg_notification`)
    r.eq(`${name} mtcute: no bad_msg_notification`, badMsgs, 0)
    r.eq(`${name} server: no framing errors / transport errors`, [d.framing_errors, d.transport_errors_sent],
      [0, 0])
    const m = d.rpcs_by_method
    r.eq(`${name} server: rpcs_by_method[help.getNearestDc]`, m['help.getNearestDc'] ?? 0, 1)
    r.eq(`${name} server: rpcs_by_method[auth.sendCode]`, m['auth.sendCode'] ?? 0, 1)
    r.eq(`${name} server: rpcs_by_method[auth.signIn]`, m['auth.signIn'] ?? 0, 1)
    r.eq(`${name} server: ping_delay_disconnect == pongs mtcute got`, m.ping_delay_disconnect ?? 0, ld.pongs)
    r.eq(`${name} server: errors`, d.errors, { '400 PHONE_CODE_INVALID': 1 })
  }

  logDelta(before) {
    const now = this.mlog.snapshot()
    const received = {}
    for (const [k, v] of Object.entries(now.received)) {
      if (v - (before.received[k] ?? 0)) received[k] = v - (before.received[k] ?? 0)
    }
    return { keysOk: now.keysOk - before.keysOk, keygenFailed: now.keygenFailed - before.keygenFailed,
      pongs: now.pongs - before.pongs, received, warnings: now.warnings - before.warnings }
  }

  // Warnings/errors mtcute logged, less the known zero-byte-key failures
  // (each logs "Authorization error: ..." and "unhandled error: ...").
  reportWarnings(name, l0) {
    let w = this.mlog.warnings.slice(l0.warnings)
    const known = w.filter((x) => x.includes(KEYGEN_BUG)).length
    if (known) w = w.filter((x) => !x.includes(KEYGEN_BUG))
    this.res.eq(`${name} mtcute: no warnings/errors logged (besides ${known} known key failure(s))`, w, [])
  }

  async caseDirect(name, kind, transportName) {
    const c0 = await this.mock.counters()
    const l0 = this.mlog.snapshot()
    this.pongs0 = l0.pongs
    const c = this.client(HOME_DC, this.transport(kind))
    try {
      await this.session(name, c)
    } finally {
      await this.destroy(c, name)
    }
    await sleep(100) // let the mock see the close
    const d = delta(dcCounters(await this.mock.counters(), HOME_DC), dcCounters(c0, HOME_DC))
    const ld = this.logDelta(l0)
    this.checkDcCounters(name, d, ld, transportName)
    this.reportWarnings(name, l0)
  }

  async caseProxy(name, idx, secret, transportName) {
    const px = this.mock.proxies[idx]
    const p0 = (await this.mock.proxyStats())[idx]
    const c0 = await this.mock.counters()
    const l0 = this.mlog.snapshot()
    this.pongs0 = l0.pongs
    const c = this.client(HOME_DC, this.transport('mtproxy', { port: px.port, secret }))
    try {
      await this.session(name, c)
    } catch (e) {
      const ps = delta((await this.mock.proxyStats())[idx], p0)
      console.log(`  ${name}: proxy stats meanwhile: ${JSON.stringify(ps)}`)
      throw e
    } finally {
      await this.destroy(c, name)
    }
    await sleep(100)
    const p = delta((await this.mock.proxyStats())[idx], p0)
    const d = delta(dcCounters(await this.mock.counters(), HOME_DC), dcCounters(c0, HOME_DC))
    const ld = this.logDelta(l0)
    const r = this.res
    // One relayed connection per connection the DC saw (mtcute reconnects
    // after a zero-byte-key failure).
    const n = d.tcp_accepted
    r.check(`${name} proxy: connections accepted == DC connections`, p.accepted === n && n >= 1,
      `proxy ${p.accepted}, DC ${n}`)
    r.eq(`${name} proxy: fake-TLS hellos answered`, p.tls_hellos_ok, px.kind === 'ee' ? n : 0)
    r.eq(`${name} proxy: client handshakes accepted`, p.handshakes_ok, n)
    r.eq(`${name} proxy: relayed to DC ${HOME_DC} only`, p.upstream_connects, { [HOME_DC]: n })
    r.eq(`${name} proxy: no rejects`, p.rejects, {})
    r.check(`${name} proxy: bytes relayed both ways`, p.bytes_client_to_dc > 0 && p.bytes_dc_to_client > 0,
      `${p.bytes_client_to_dc} up, ${p.bytes_dc_to_client} down`)
    this.checkDcCounters(name, d, ld, transportName)
    this.reportWarnings(name, l0)
  }

  // A client that can never connect: run until `await seen()` or the bound
  // (polled one at a time: mock commands never overlap), then destroy.
  async failingClient(name, c, seen) {
    const conn = c.connect().catch(() => {})
    const call = c.call({ _: 'help.getNearestDc' }, { timeout: this.T }).then(
      (x) => `unexpected result ${x?._}`, (e) => `${e?.constructor?.name}: ${e?.message}`)
    const end = Date.now() + Math.min(this.T, 15000)
    let ok = false
    while (!(ok = await seen()) && Date.now() < end) await sleep(50)
    await this.destroy(c, name)
    const outcome = await within(call, 10000, `${name}: call`).catch((e) => e.message)
    await within(conn, 5000, `${name}: connect`).catch(() => {})
    return { ok, outcome }
  }

  async caseEeWrongSecret(idx) {
    const name = 'mtproxy/ee-wrong-secret'
    const px = this.mock.proxies[idx]
    const p0 = (await this.mock.proxyStats())[idx]
    const secret = 'ee' + WRONG_SECRET + Buffer.from(TLS_DOMAIN).toString('hex')
    const c = this.client(HOME_DC, this.transport('mtproxy', { port: px.port, secret }))
    const stats = () => this.mock.proxyStats().then((s) => delta(s[idx], p0))
    const { outcome } = await this.failingClient(name, c,
      async () => ((await stats()).rejects.tls_digest ?? 0) >= 1)
    await sleep(100)
    const p = await stats()
    this.res.check(`${name} proxy: rejects.tls_digest`, (p.rejects.tls_digest ?? 0) >= 1,
      `rejects ${JSON.stringify(p.rejects)}`)
    this.res.eq(`${name} proxy: no ServerHello, no handshake, no relay`,
      [p.tls_hellos_ok, p.handshakes_ok, p.upstream_connects], [0, 0, {}])
    this.res.check(`${name} mtcute: no result`, !outcome.startsWith('unexpected'), outcome)
  }

  // A relay between mtcute and the ee proxy that flips one byte of the
  // ServerHello's random (its HMAC digest, bytes 11..42): mtcute must refuse
  // the hello. Shows that the positive ee case really checked the digest.
  async caseEeTamperedHello(idx) {
    const name = 'mtproxy/ee-tampered-hello'
    const px = this.mock.proxies[idx]
    const p0 = (await this.mock.proxyStats())[idx]
    const sockets = new Set()
    let flipped = 0
    const relay = net.createServer((cl) => {
      const up = net.connect(px.port, '127.0.0.1')
      sockets.add(cl).add(up)
      let seen = 0
      cl.on('data', (b) => up.write(b))
      up.on('data', (b) => {
        const buf = Buffer.from(b)
        const at = 11 + 5 - seen // byte 16 of the server stream: inside the digest
        if (at >= 0 && at < buf.length) {
          buf[at] ^= 0x01
          flipped++
        }
        seen += buf.length
        cl.write(buf)
      })
      const close = () => {
        cl.destroy()
        up.destroy()
      }
      cl.on('close', close).on('error', close)
      up.on('close', close).on('error', close)
    })
    await within(new Promise((resolve) => relay.listen(0, '127.0.0.1', resolve)), 5000, 'relay listen')
    try {
      const c = this.client(HOME_DC, this.transport('mtproxy', { port: relay.address().port, secret: EE_SECRET }))
      const before = this.mlog.helloRefusals
      const refusal = async () => this.mlog.helloRefusals > before
      const { ok, outcome } = await this.failingClient(name, c, refusal)
      this.res.check(`${name} mtcute refuses the altered ServerHello`, ok && flipped > 0,
        ok ? `"Response hash is invalid" logged, ${flipped} byte(s) flipped` :
          `no refusal logged (${flipped} byte(s) flipped; ${outcome})`)
      this.res.check(`${name} mtcute: no result`, !outcome.startsWith('unexpected'), outcome)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => relay.close(resolve))
    }
    await sleep(100)
    const p = delta((await this.mock.proxyStats())[idx], p0)
    this.res.check(`${name} proxy: ServerHello sent, nothing relayed`, p.tls_hellos_ok >= 1 &&
      Object.keys(p.upstream_connects).length === 0,
    `tls_hellos_ok +${p.tls_hellos_ok}, upstream ${JSON.stringify(p.upstream_connects)}`)
  }
}

async function runCases(t, res) {
  const eeSecret = t.args.selftestWrongEe ? 'ee' + WRONG_SECRET + Buffer.from(TLS_DOMAIN).toString('hex')
    : EE_SECRET
  const cases = [
    ['direct/intermediate', () => t.caseDirect('direct/intermediate', 'intermediate', 'intermediate')],
    ['direct/padded', () => t.caseDirect('direct/padded', 'padded', 'padded')],
    ['direct/obfuscated-intermediate', () => t.caseDirect('direct/obfuscated-intermediate',
      'obfuscated-intermediate', 'obfuscated/intermediate')],
    ['direct/obfuscated-padded', () => t.caseDirect('direct/obfuscated-padded', 'obfuscated-padded',
      'obfuscated/padded')],
    ['mtproxy/plain', () => t.caseProxy('mtproxy/plain', 0, PROXY_SECRET, 'obfuscated/intermediate')],
    ['mtproxy/dd', () => t.caseProxy('mtproxy/dd', 1, 'dd' + PROXY_SECRET, 'obfuscated/padded')],
    ['mtproxy/ee', () => t.caseProxy('mtproxy/ee', 2, eeSecret, 'obfuscated/padded')],
    ['mtproxy/ee-wrong-secret', () => t.caseEeWrongSecret(2)],
    ['mtproxy/ee-tampered-hello', () => t.caseEeTamperedHello(2)],
  ].filter(([n]) => !t.args.only || t.args.only.split(',').some((o) => n.startsWith(o)))
  // mtcute puts a ping_delay_disconnect into a flush when performance.now() -
  // lastPingTime (0 for a new session) exceeds _pingMustDelay(), which is
  // 2 s while requests are pending and no RTT is known yet
  // (session-connection.js). So every new client pings in its first flush
  // once the process is 2 s old: wait for that, then each case sees a pong.
  await sleep(Math.max(0, 2500 - performance.now()))
  const start = Date.now()
  for (const [name, fn] of cases) {
    console.log(`---- ${name}`)
    if ((Date.now() - start) / 1000 > t.args.budget) {
      res.check(`${name} run`, false, `not run: the ${t.args.budget} s budget is spent`)
      continue
    }
    const f0 = res.failed
    const t0 = Date.now()
    try {
      await fn()
    } catch (e) {
      res.check(`${name} completed`, false, `${e?.constructor?.name}: ${e?.message}`)
      const w = t.mlog.lines.slice(-15)
      if (w.length) console.log(`  last mtcute log lines:\n    ${w.join('\n    ')}`)
    }
    res.cases.push([name, (Date.now() - t0) / 1000, res.failed === f0])
  }
}

function checkTotals(t, res, tot) {
  res.check('counters: connections accepted >= mtcute connections', tot.tcp_accepted >= t.connections,
    `tcp_accepted=${tot.tcp_accepted}, mtcute sessions=${t.connections}`)
  res.eq('counters: handshakes == mtcute key generations (ok + failed)', tot.handshakes_perm,
    t.mlog.keysOk + t.mlog.keygenFailed, `mtcute: ${t.mlog.keysOk} ok, ${t.mlog.keygenFailed} failed`)
  res.eq('counters: no temp keys / binds', [tot.handshakes_temp, tot.binds], [0, 0])
  res.eq('counters: sessions == new_session_created mtcute got', tot.sessions_created,
    t.mlog.received.mt_new_session_created ?? 0)
  const salts = t.mlog.received.mt_bad_server_salt ?? 0
  const bad = t.mlog.received.mt_bad_msg_notification ?? 0
  res.eq('counters: bad_msgs_sent == bad_server_salt + bad_msg_notification mtcute got',
    tot.bad_msgs_sent, salts + bad)
  const m = tot.rpcs_by_method
  for (const [k, n] of Object.entries(t.expectMethods).sort()) {
    res.eq(`counters: rpcs_by_method[${k}]`, m[k] ?? 0, n)
  }
  res.eq('counters: ping_delay_disconnect == pongs mtcute got', m.ping_delay_disconnect ?? 0, t.mlog.pongs)
  res.eq('counters: errors', tot.errors, t.expectErrors)
  res.eq('counters: no framing errors / transport errors / dropped answers',
    [tot.framing_errors, tot.transport_errors_sent, tot.answers_dropped], [0, 0, 0])
  res.eq('counters: no handshake failures', tot.handshake_failures, 0)
}

// Every package of package-lock.json installed in that version: '' or what differs.
function installedMismatch() {
  const here = path.dirname(new URL(import.meta.url).pathname)
  let lock
  try {
    lock = JSON.parse(fs.readFileSync(path.join(here, 'package-lock.json'), 'utf8'))
  } catch (e) {
    return `package-lock.json: ${e.message}`
  }
  const bad = []
  for (const [p, info] of Object.entries(lock.packages ?? {})) {
    if (!p.startsWith('node_modules/')) continue
    let v = null
    try {
      v = JSON.parse(fs.readFileSync(path.join(here, p, 'package.json'), 'utf8')).version
    } catch { /* missing */ }
    if (v !== info.version) bad.push(`${p.slice(13)} ${v ?? 'missing'} (lock ${info.version})`)
  }
  return bad.length ? `${bad.length} package(s) not as locked: ${bad.slice(0, 5).join(', ')}` : ''
}

async function loadMtcute() {
  const bad = installedMismatch()
  if (bad) throw new Error(bad)
  const node = await import('@mtcute/node')
  const core = await import('@mtcute/core')
  const utils = await import('@mtcute/core/utils.js')
  const { NodeCryptoProvider } = await import('@mtcute/node/utils.js')
  return {
    BaseTelegramClient: node.BaseTelegramClient,
    NodePlatform: node.NodePlatform,
    TcpTransport: node.TcpTransport,
    MtProxyTcpTransport: node.MtProxyTcpTransport,
    MemoryStorage: core.MemoryStorage,
    IntermediatePacketCodec: core.IntermediatePacketCodec,
    PaddedIntermediatePacketCodec: core.PaddedIntermediatePacketCodec,
    ObfuscatedPacketCodec: core.ObfuscatedPacketCodec,
    LogManager: utils.LogManager,
    addPublicKey: utils.addPublicKey,
    NodeCryptoProvider,
  }
}

async function amain(args, res, mt) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'interop_mtcute_'))
  const mlog = new MtcuteLog(args.verbose)
  if (args.logFile) mlog.logFd = fs.openSync(args.logFile, 'w')
  const mock = new MockDC(args.mockdc, tmp, [
    '--home-dc', String(HOME_DC), '--files-dc', String(FILES_DC), '--nearest-dc', String(NEAREST_DC),
    '--proxy', `${PROXY_SECRET}:classic`,
    '--proxy', `dd${PROXY_SECRET}:secure`,
    '--proxy', `${EE_SECRET}:tls`,
  ], args.verbose)
  const killer = () => mock.killNow()
  process.on('exit', killer)
  try {
    await mock.start(20000)
    res.check('mock started', Object.keys(mock.ports).length === 5 &&
      JSON.stringify(mock.proxies.map((p) => p.kind)) === '["plain","dd","ee"]',
    `DCs ${JSON.stringify(mock.ports)}, proxies ${JSON.stringify(mock.proxies)}`)
    const crypto = new mt.NodeCryptoProvider()
    for (const pem of Object.values(mock.publicKeys())) mt.addPublicKey(crypto, pem)
    const t = new Interop(args, mock, res, mlog, mt)
    await runCases(t, res)
    if (!args.only) {
      const final = await mock.counters()
      checkTotals(t, res, final.totals)
    }
  } finally {
    const rc = await mock.stop()
    process.off('exit', killer)
    res.check('mock exited cleanly', rc === 0, `exit code ${rc}`)
    if (res.failed) {
      const tail = mock.stderrTail()
      if (tail) console.log(`---- mtconn-mockdc stderr (tail)\n${tail}`)
    }
    if (!args.keep) fs.rmSync(tmp, { recursive: true, force: true })
    else console.log(`kept ${tmp}`)
  }
}

async function main() {
  if (process.argv[2] === '--check-installed') {
    const bad = installedMismatch()
    if (bad) console.log(`interop_mtcute: ${bad}`)
    return bad ? 1 : 0
  }
  const res = new Results()
  const t0 = Date.now()
  let args
  try {
    args = parseArgs(process.argv.slice(2))
  } catch (e) {
    console.error(`interop_mtcute: ${e.message}`)
    return 2
  }
  let mt
  try {
    mt = await loadMtcute()
  } catch (e) {
    // Part of the suite, not optional: ./run.sh test runs npm ci here.
    res.check('mtcute packages load', false, `${e.message}; run "npm ci" in ${path.dirname(
      new URL(import.meta.url).pathname)}`)
  }
  if (mt) {
    const pkg = JSON.parse(fs.readFileSync(new URL('./node_modules/@mtcute/core/package.json',
      import.meta.url), 'utf8'))
    console.log(`mtcute ${pkg.version} (own layer 227, announces ${MOCK_LAYER}), node ${process.version}`)
    try {
      // The whole run is bounded too (ctest's TIMEOUT is the outer bound).
      await within(amain(args, res, mt), (args.budget + 60) * 1000, 'interop run')
    } catch (e) {
      res.check('run', false, `${e?.constructor?.name}: ${e?.message}`)
    }
  }
  console.log(`---- summary (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
  for (const [name, sec, ok] of res.cases) {
    console.log(`  ${name.padEnd(30)} ${ok ? 'ok  ' : 'FAIL'} ${sec.toFixed(2).padStart(6)} s`)
  }
  for (const n of res.notes) console.log(`  note: ${n}`)
  for (const f of res.failures) console.log(`  failed: ${f}`)
  console.log(`interop_mtcute: ${res.passed} passed, ${res.failed} failed`)
  return res.failed ? 1 : 0
}

main().then((code) => process.exit(code), (e) => {
  console.log(`interop_mtcute: crashed: ${e?.stack ?? e}`)
  console.log('interop_mtcute: 0 passed, 1 failed')
  process.exit(1)
})
