#!/usr/bin/python3
"""Interop: Telethon (an independent MTProto client) against mtconn-mockdc.

If Telethon cannot talk to the mock, the mock is wrong. Telethon 1.25 speaks
layer 144; only calls stable across layers are used (ping, help.getNearestDc,
auth.sendCode / signIn, users.getUsers, upload.getFile).

Cases
  transport/<name>   for full, abridged, intermediate, obfuscated (abridged
                     inside obfuscated2) and obfuscated padded intermediate
                     (dd inside obfuscated2): fresh session on DC 2 (new auth
                     key), ping -> pong with our ping_id, help.getNearestDc,
                     auth.sendCode on DC 2 -> rpc_error 303 PHONE_MIGRATE_5,
                     and the mock's counters for exactly that.
  keepalive          Telethon's own keepalive ping (sender._keepalive_ping, a
                     content-related message, odd seq_no): pong, no
                     bad_msg_notification, no reconnect.
  login              migrate to DC 5, wrong code -> PHONE_CODE_INVALID, sign
                     in with 12345, get_me, 1 MiB download from DC 1 (export /
                     import) compared with the SHA-256 counter stream.
  mtproxy/<kind>     through the mock MTProxy (mtconn-mockdc --proxy): plain
                     secret (abridged, intermediate), dd secret (padded
                     intermediate); an ee (fake-TLS) secret, which Telethon
                     1.25 does not support.
  counters           the mock's totals agree with what Telethon did.

Known Telethon 1.25 behaviour (the mock is not bent for any of it):
  - its first encrypted message carries salt 0: one bad_server_salt per session;
  - ~1 key in 256 starts with a zero byte, which Telethon strips (its
    handshake then fails at dh_gen_ok, after the mock counted a completed
    handshake): Telethon retries the key generation on the same connection
    (connection_retries=2), the test redoes a failed connect with a new
    session (up to 3 tries), and both are reported. --simulate-zero-byte-keys N
    makes the first N key generations fail that way (a self-test of that path);
  - its padded-intermediate reader strips only len % 4 bytes, so 4..15 bytes
    of a server's 0..15 padding stay on the message. With the libssl AES
    backend that reaches OpenSSL's AES_ige_encrypt with a length that is not
    a multiple of 16 -> OpenSSL assertion -> the process aborts (seen with
    OpenSSL 3 on Debian 12). With Telethon's
    pure-Python backend the partial block is ignored and the message checks
    out, so the padded cases run with that backend.
  - it has no fake-TLS (ee) MTProxy support.

Usage: telethon_interop.py --mockdc PATH [--timeout S] [--only PREFIXES] [--verbose]
                            [--keep] [--simulate-zero-byte-keys N]
Ends with "interop_telethon: N passed, N failed"; exit 1 on any failure,
including a machine without Telethon (./run.sh test installs it).
"""
import argparse
import asyncio
import contextlib
import hashlib
import logging
import os
import random
import shutil
import struct
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mockdc_process import MockDC, dc_counters, delta  # noqa: E402

# The interop test is part of the suite, not optional: ./run.sh test installs
# Debian's python3-telethon, so a missing Telethon is a broken setup.
try:
    import telethon  # noqa: E402
except ImportError as _e:
    print('interop_telethon: Telethon is missing (%s): apt-get install python3-telethon' % _e)
    print('interop_telethon: 0 passed, 1 failed')
    sys.exit(1)
from telethon import TelegramClient, connection, errors, functions, types  # noqa: E402
from telethon.crypto import aes as telethon_aes  # noqa: E402
from telethon.crypto import rsa as telethon_rsa  # noqa: E402
from telethon.network.connection.connection import ObfuscatedConnection  # noqa: E402
from telethon.network.connection.tcpintermediate import \
    RandomizedIntermediatePacketCodec  # noqa: E402
from telethon.network.connection.tcpobfuscated import ObfuscatedIO  # noqa: E402
from telethon.sessions import MemorySession  # noqa: E402

API_ID = 12345
API_HASH = '0123456789abcdef0123456789abcdef'
PHONE = '+15550000005'       # lives on the home DC (5)
LOGIN_CODE = '12345'
WRONG_CODE = '54321'
HOME_DC = 5
FILES_DC = 1
NEAREST_DC = 4               # --nearest-dc, so this_dc != nearest_dc is visible
FILE_ID = 1
FILE_SIZE = 1 << 20
PROXY_SECRET = '0123456789abcdef0123456789abcdef'
TLS_DOMAIN = 'example.com'
EE_SECRET = 'ee' + PROXY_SECRET + TLS_DOMAIN.encode().hex()
MAX_CONNECT_TRIES = 3

MOCK_PING_BUG = 'MOCK BUG: bad_msg 34 for an odd-seq_no ping, see the note'
MOCK_PING_BUG_NOTE = ('mock bug: tests/mockdc/mock_session.c answers a content-related ping '
                      '(odd seq_no, as Telethon sends every ping, its keepalive included) with '
                      'bad_msg_notification 34; real servers accept either parity for ping. '
                      'Failures tagged "MOCK BUG" are this, not Telethon.')


class ConnectionTcpObfuscatedPadded(ObfuscatedConnection):
    """Telethon 1.25 has no direct padded-intermediate connection class (its
    RandomizedIntermediatePacketCodec has no plain tag); inside obfuscated2
    it works: Telethon's own codec and obfuscation, composed as its
    ConnectionTcpObfuscated composes the abridged codec."""
    packet_codec = RandomizedIntermediatePacketCodec
    obfuscated_io = ObfuscatedIO


# ---- results -------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.notes = []
        self.cases = []  # (name, seconds, ok, retries)
        self.retries_total = 0

    def check(self, name, ok, detail=''):
        if ok:
            self.passed += 1
            print('PASS  %s%s' % (name, '  (%s)' % detail if detail else ''), flush=True)
        else:
            self.failed += 1
            self.failures.append('%s: %s' % (name, detail))
            print('FAIL  %s%s' % (name, '  -- %s' % detail if detail else ''), flush=True)
        return ok

    def eq(self, name, got, want, hint=''):
        return self.check(name, got == want,
                          'got %r' % (got,) if got == want else
                          'got %r, want %r%s' % (got, want, '; ' + hint if hint else ''))

    def note(self, text):
        if text in self.notes:
            return
        self.notes.append(text)
        print('NOTE  %s' % text, flush=True)

    def ping_bug(self, bad_msgs):
        """The hint for a failure caused by the mock's ping parity bug, or ''."""
        if not bad_msgs.get(34):
            return ''
        self.note(MOCK_PING_BUG_NOTE)
        return MOCK_PING_BUG


class TelethonLog(logging.Handler):
    """Counts what Telethon's MTProtoSender logs: new keys, failed key
    generations (the zero-byte key), bad salts, bad msgs by code, pongs,
    reconnects. Every client uses the logger telethon.network.mtprotosender."""

    def __init__(self, verbose):
        super().__init__(logging.DEBUG)
        self.verbose = verbose
        self.reset()

    def reset(self):
        self.keys_ok = 0
        self.keygen_failed = 0
        self.bad_salts = 0
        self.bad_msgs = {}
        self.pongs = 0
        self.reconnects = 0
        self.new_sessions = 0
        self.last_keygen_error = ''

    def snapshot(self):
        return dict(keys_ok=self.keys_ok, keygen_failed=self.keygen_failed,
                    bad_salts=self.bad_salts, bad_msgs=dict(self.bad_msgs),
                    pongs=self.pongs, reconnects=self.reconnects,
                    new_sessions=self.new_sessions)

    def emit(self, record):
        msg = record.msg if isinstance(record.msg, str) else ''
        if msg.startswith('auth_key generation success'):
            self.keys_ok += 1
        elif msg.startswith('Attempt %d at new auth_key failed'):
            self.keygen_failed += 1
            self.last_keygen_error = str(record.args[-1]) if record.args else ''
        elif msg.startswith('Handling bad salt'):
            self.bad_salts += 1
        elif msg.startswith('Handling bad msg') and record.args:
            code = getattr(record.args[0], 'error_code', -1)
            self.bad_msgs[code] = self.bad_msgs.get(code, 0) + 1
        elif msg.startswith('Handling pong'):
            self.pongs += 1
        elif msg.startswith('Closing current connection to begin reconnect'):
            self.reconnects += 1
        elif msg.startswith('Handling new session created'):
            self.new_sessions += 1
        if self.verbose and record.levelno >= logging.INFO:
            print('  telethon: %s' % record.getMessage(), flush=True)


def log_delta(after, before):
    out = {k: after[k] - before[k] for k in after if k != 'bad_msgs'}
    out['bad_msgs'] = {c: n - before['bad_msgs'].get(c, 0) for c, n in after['bad_msgs'].items()
                       if n - before['bad_msgs'].get(c, 0)}
    return out


@contextlib.contextmanager
def pure_python_aes_decrypt():
    """Telethon's padded readers leave 4..15 padding bytes on a message; the
    libssl backend then aborts the process (see the module doc). Telethon's
    pure-Python AES backend decrypts whole blocks only."""
    saved = telethon_aes.libssl.decrypt_ige
    telethon_aes.libssl.decrypt_ige = None
    try:
        yield
    finally:
        telethon_aes.libssl.decrypt_ige = saved


def simulate_zero_byte_keys(n):
    """Self-test of the retry accounting (--simulate-zero-byte-keys N): the
    first N key generations fail the way Telethon's zero-byte-key bug makes
    them fail -- after the server sent dh_gen_ok, with a SecurityError."""
    from telethon.errors import SecurityError
    from telethon.network import authenticator
    real = authenticator.do_authentication
    budget = [n]

    async def do_authentication(sender):
        result = await real(sender)
        if budget[0] > 0:
            budget[0] -= 1
            raise SecurityError('simulated: key starting with a zero byte')
        return result
    authenticator.do_authentication = do_authentication


def expected_file(file_id, size):
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(struct.pack('<q', file_id) + struct.pack('>Q', i)).digest()
        i += 1
    return bytes(out[:size])


# ---- the test ----------------------------------------------------------------------------

class Interop:
    def __init__(self, args, mock, res, tlog):
        self.args = args
        self.mock = mock
        self.res = res
        self.tlog = tlog
        self.T = args.timeout
        self.connects = 0          # TCP connections Telethon made to the DCs (incl. via proxy)
        self.new_connection_retries = 0
        self.expect_methods = {}   # method -> count Telethon sent (ours, not Telethon's own)
        self.expect_errors = {}

    def bump(self, table, name, n=1):
        table[name] = table.get(name, 0) + n

    async def aw(self, coro, what, timeout=None):
        try:
            return await asyncio.wait_for(coro, timeout or self.T)
        except asyncio.TimeoutError:
            raise TimeoutError('%s: no result within %.0f s' % (what, timeout or self.T))

    def client(self, dc, conn, proxy=None):
        s = MemorySession()
        s.set_dc(dc, '127.0.0.1', self.mock.ports[dc])
        return TelegramClient(s, API_ID, API_HASH, connection=conn, proxy=proxy,
                              receive_updates=False, connection_retries=2, retry_delay=0,
                              request_retries=2, timeout=self.T)

    async def connect(self, name, dc, conn, proxy=None):
        """Connect a fresh client, retrying up to MAX_CONNECT_TRIES times. Telethon
        itself retries a failed key generation (the zero-byte key) on the same
        connection; both kinds of retry are counted."""
        last = None
        before = self.tlog.keygen_failed
        for attempt in range(1, MAX_CONNECT_TRIES + 1):
            c = self.client(dc, conn, proxy)
            try:
                self.connects += 1
                await self.aw(c.connect(), '%s: connect' % name)
                internal = self.tlog.keygen_failed - before
                retries = attempt - 1 + internal
                if retries:
                    self.res.note('%s: connect needed %d retr%s: %d failed key generation(s) '
                                  '(Telethon\'s zero-byte-key bug; last: "%s"), %d new '
                                  'connection(s)' %
                                  (name, retries, 'y' if retries == 1 else 'ies', internal,
                                   self.tlog.last_keygen_error, attempt - 1))
                return c, attempt
            except Exception as e:  # noqa: BLE001 -- any failure: retry with a new session
                last = e
                if attempt < MAX_CONNECT_TRIES:
                    self.new_connection_retries += 1
                print('  %s: connect attempt %d failed: %s: %s' %
                      (name, attempt, type(e).__name__, e), flush=True)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(c.disconnect(), 5)
        raise ConnectionError('%s: %d connect attempts failed, last: %r' %
                              (name, MAX_CONNECT_TRIES, last))

    # -- small checks shared by the cases ---------------------------------------------------

    async def check_ping(self, name, c):
        ping_id = random.getrandbits(63)
        try:
            r = await self.aw(c(functions.PingRequest(ping_id=ping_id)), name + ': ping')
            self.bump(self.expect_methods, 'ping')
            return self.res.check(name + ' ping -> pong',
                                  isinstance(r, types.Pong) and r.ping_id == ping_id,
                                  'pong ping_id=%d' % r.ping_id if isinstance(r, types.Pong)
                                  else 'got %r' % (r,))
        except errors.BadMessageError as e:
            self.bump(self.expect_methods, 'ping')
            code = getattr(e, 'code', None)
            hint = self.res.ping_bug({code: 1})
            return self.res.check(name + ' ping -> pong', False,
                                  'BadMessageError: bad_msg_notification %s%s' %
                                  (code, '; ' + hint if hint else ''))

    async def check_nearest(self, name, c, this_dc):
        r = await self.aw(c(functions.help.GetNearestDcRequest()), name + ': getNearestDc')
        self.bump(self.expect_methods, 'help.getNearestDc')
        self.res.check(name + ' help.getNearestDc',
                       r.this_dc == this_dc and r.nearest_dc == NEAREST_DC,
                       'this_dc=%d nearest_dc=%d country=%s' % (r.this_dc, r.nearest_dc,
                                                               r.country))

    async def check_migrate(self, name, c):
        """auth.sendCode on DC 2 -> rpc_error 303 PHONE_MIGRATE_5. Sent through the
        sender (TelegramClient.__call__ would follow the migration by itself)."""
        req = functions.auth.SendCodeRequest(PHONE, API_ID, API_HASH, types.CodeSettings())
        self.bump(self.expect_methods, 'auth.sendCode')
        try:
            r = await self.aw(c._sender.send(req), name + ': sendCode')
            self.res.check(name + ' rpc_error PHONE_MIGRATE_5', False, 'got a result: %r' % (r,))
        except errors.PhoneMigrateError as e:
            self.bump(self.expect_errors, '303 PHONE_MIGRATE_5')
            self.res.check(name + ' rpc_error PHONE_MIGRATE_5',
                           e.new_dc == HOME_DC and e.code == 303,
                           'PhoneMigrateError code=%d new_dc=%d' % (e.code, e.new_dc))

    def check_session_counters(self, name, d, ld, transport, tries, extra_methods=(),
                               extra_errors=()):
        """Server-side counts on one DC for one fresh client session."""
        r = self.res
        r.check(name + ' server: connections accepted', d['tcp_accepted'] >= tries,
                'tcp_accepted +%d for %d connect(s)' % (d['tcp_accepted'], tries))
        r.eq(name + ' server: handshakes == Telethon key generations', d['handshakes_perm'],
             ld['keys_ok'] + ld['keygen_failed'],
             'Telethon: %d new key(s), %d failed' % (ld['keys_ok'], ld['keygen_failed']))
        r.eq(name + ' Telethon: one new auth key', ld['keys_ok'], 1)
        r.eq(name + ' server: handshake failures', d['handshake_failures'], 0)
        r.eq(name + ' server: transport "%s"' % transport,
             d['transports'].get(transport, 0), tries)
        r.eq(name + ' server: sessions created', d['sessions_created'], 1)
        r.eq(name + ' Telethon: bad_server_salt for its salt-0 first message',
             ld['bad_salts'], 1)
        extra = sum(ld['bad_msgs'].values())
        hint = r.ping_bug(ld['bad_msgs'])
        r.eq(name + ' server: bad_msgs_sent == the one bad_server_salt', d['bad_msgs_sent'],
             ld['bad_salts'],
             'bad_msg_notification codes Telethon got: %r%s' %
             (ld['bad_msgs'], '; ' + hint if hint else '') if extra else '')
        r.eq(name + ' Telethon: no bad_msg_notification', ld['bad_msgs'], {}, hint)
        r.eq(name + ' server: no framing errors', d['framing_errors'], 0)
        for m, n in extra_methods:
            r.eq(name + ' server: rpcs_by_method[%s]' % m, d['rpcs_by_method'].get(m, 0), n)
        for e, n in extra_errors:
            r.eq(name + ' server: errors[%s]' % e, d['errors'].get(e, 0), n)

    # -- cases ------------------------------------------------------------------------------

    async def case_transport(self, name, conn, transport, padded=False):
        c0 = self.mock.counters()
        l0 = self.tlog.snapshot()
        ctx = pure_python_aes_decrypt() if padded else contextlib.nullcontext()
        with ctx:
            c, tries = await self.connect(name, 2, conn)
            try:
                await self.check_ping(name, c)
                await self.check_nearest(name, c, 2)
                await self.check_migrate(name, c)
            finally:
                await self.aw(c.disconnect(), name + ': disconnect')
        d = delta(dc_counters(self.mock.counters(), 2), dc_counters(c0, 2))
        ld = log_delta(self.tlog.snapshot(), l0)
        self.check_session_counters(
            name, d, ld, transport, tries,
            extra_methods=[('ping', 1), ('help.getNearestDc', 1), ('auth.sendCode', 1)],
            extra_errors=[('303 PHONE_MIGRATE_5', 1)])

    async def case_keepalive(self):
        name = 'keepalive'
        c, _ = await self.connect(name, 2, connection.ConnectionTcpIntermediate)
        try:
            # Session settled (salt fixed) before the measured part.
            await self.check_nearest(name, c, 2)
            c0 = self.mock.counters()
            l0 = self.tlog.snapshot()
            sender = c._sender
            for round_no in (1, 2):
                rnd = random.getrandbits(63)
                # What TelegramClient._keepalive_loop does every minute.
                sender._keepalive_ping(rnd)
                self.bump(self.expect_methods, 'ping')
                deadline = time.monotonic() + min(self.T, 10)
                while (sender._ping is not None and time.monotonic() < deadline and
                       not log_delta(self.tlog.snapshot(), l0)['bad_msgs']):
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.05)  # let a late bad_msg show up in the log
                lnow = log_delta(self.tlog.snapshot(), l0)
                hint = self.res.ping_bug(lnow['bad_msgs'])
                if not self.res.check('%s round %d: pong for the keepalive ping' % (name, round_no),
                                      sender._ping is None,
                                      'pong handled' if sender._ping is None else
                                      'no pong; bad_msg codes Telethon got: %r%s' %
                                      (lnow['bad_msgs'], '; ' + hint if hint else '')):
                    # A second keepalive with the first unanswered would make
                    # Telethon reconnect: stop here.
                    sender._ping = None
                    break
            await self.check_nearest(name + ' (after keepalive)', c, 2)
            d = delta(dc_counters(self.mock.counters(), 2), dc_counters(c0, 2))
            ld = log_delta(self.tlog.snapshot(), l0)
            hint = self.res.ping_bug(ld['bad_msgs'])
            self.res.eq(name + ' server: no bad_msg_notification (34) for odd-seq_no ping',
                        d['bad_msgs_sent'], 0, hint)
            self.res.eq(name + ' Telethon: no bad_msg_notification', ld['bad_msgs'], {}, hint)
            self.res.eq(name + ' Telethon: no reconnect', ld['reconnects'], 0)
            self.res.eq(name + ' server: no new connection', d['tcp_accepted'], 0)
            self.res.check(name + ' server: pings counted', d['rpcs_by_method'].get('ping', 0) >= 1,
                           'ping +%d' % d['rpcs_by_method'].get('ping', 0))
        finally:
            await self.aw(c.disconnect(), name + ': disconnect')

    async def case_login(self):
        name = 'login'
        r = self.res
        c0 = self.mock.counters()
        l0 = self.tlog.snapshot()
        c, _ = await self.connect(name, 2, connection.ConnectionTcpFull)
        try:
            auth = await self.aw(c.is_user_authorized(), name + ': is_user_authorized')
            r.eq(name + ' not authorized on a new key', auth, False)
            sent = await self.aw(c.send_code_request(PHONE), name + ': send_code_request')
            self.bump(self.expect_methods, 'auth.sendCode', 2)   # DC 2 (migrate) + DC 5
            self.bump(self.expect_errors, '303 PHONE_MIGRATE_5')
            self.connects += 1
            r.eq(name + ' PHONE_MIGRATE_5 followed: session on the home DC', c.session.dc_id,
                 HOME_DC)
            r.check(name + ' sentCode', isinstance(sent, types.auth.SentCode),
                    '%s' % type(sent.type).__name__)
            try:
                await self.aw(c.sign_in(PHONE, WRONG_CODE), name + ': sign_in (wrong code)')
                r.check(name + ' wrong code -> PHONE_CODE_INVALID', False, 'signed in')
            except errors.PhoneCodeInvalidError as e:
                r.check(name + ' wrong code -> PHONE_CODE_INVALID', e.code == 400,
                        'PhoneCodeInvalidError code=%d' % e.code)
            self.bump(self.expect_methods, 'auth.signIn')
            self.bump(self.expect_errors, '400 PHONE_CODE_INVALID')
            me = await self.aw(c.sign_in(PHONE, LOGIN_CODE), name + ': sign_in')
            self.bump(self.expect_methods, 'auth.signIn')
            r.check(name + ' signed in with ' + LOGIN_CODE,
                    isinstance(me, types.User) and me.phone == PHONE.lstrip('+'),
                    'user id=%s phone=%s' % (getattr(me, 'id', None), getattr(me, 'phone', None)))
            me2 = await self.aw(c.get_me(), name + ': get_me')
            r.check(name + ' get_me', me2 is not None and me2.id == me.id, 'id=%s' %
                    getattr(me2, 'id', None))
            r.eq(name + ' authorized', await self.aw(c.is_user_authorized(), 'authorized'), True)
            loc = types.InputDocumentFileLocation(id=FILE_ID, access_hash=0, file_reference=b'',
                                                  thumb_size='')
            t = time.monotonic()
            data = await self.aw(c.download_file(loc, bytes, part_size_kb=512,
                                                 file_size=FILE_SIZE, dc_id=FILES_DC),
                                 name + ': download', timeout=max(self.T, 60))
            self.connects += 1
            dt = time.monotonic() - t
            want = expected_file(FILE_ID, FILE_SIZE)
            r.check(name + ' 1 MiB download from DC %d == SHA-256 counter stream' % FILES_DC,
                    data == want, '%d bytes in %.2f s%s' %
                    (len(data or b''), dt, '' if data == want else
                     ', first difference at %s' % next((i for i, (a, b) in
                                                        enumerate(zip(data, want)) if a != b),
                                                       min(len(data), len(want)))))
            await self.check_nearest(name, c, HOME_DC)
        finally:
            await self.aw(c.disconnect(), name + ': disconnect')
        c1 = self.mock.counters()
        ld = log_delta(self.tlog.snapshot(), l0)
        d2 = delta(dc_counters(c1, 2), dc_counters(c0, 2))
        d5 = delta(dc_counters(c1, HOME_DC), dc_counters(c0, HOME_DC))
        d1 = delta(dc_counters(c1, FILES_DC), dc_counters(c0, FILES_DC))
        r.eq(name + ' server DC 2: sendCode', d2['rpcs_by_method'].get('auth.sendCode', 0), 1)
        r.eq(name + ' server DC 2: PHONE_MIGRATE_5', d2['errors'].get('303 PHONE_MIGRATE_5', 0), 1)
        r.eq(name + ' server DC 5: sendCode', d5['rpcs_by_method'].get('auth.sendCode', 0), 1)
        r.eq(name + ' server DC 5: signIn', d5['rpcs_by_method'].get('auth.signIn', 0), 2)
        r.eq(name + ' server DC 5: PHONE_CODE_INVALID',
             d5['errors'].get('400 PHONE_CODE_INVALID', 0), 1)
        r.eq(name + ' server DC 5: exportAuthorization',
             d5['rpcs_by_method'].get('auth.exportAuthorization', 0), 1)
        r.eq(name + ' server DC 1: importAuthorization',
             d1['rpcs_by_method'].get('auth.importAuthorization', 0), 1)
        r.check(name + ' server DC 1: upload.getFile', d1['rpcs_by_method'].get('upload.getFile', 0)
                >= FILE_SIZE // (512 << 10), 'upload.getFile +%d' %
                d1['rpcs_by_method'].get('upload.getFile', 0))
        r.check(name + ' server DC 1: bytes out >= 1 MiB', d1['bytes_out'] >= FILE_SIZE,
                '%d' % d1['bytes_out'])
        hs = sum(d['handshakes_perm'] for d in (d1, d2, d5))
        r.eq(name + ' server: handshakes on DCs 2, 5, 1 == Telethon key generations', hs,
             ld['keys_ok'] + ld['keygen_failed'])
        r.eq(name + ' Telethon: three new auth keys (DCs 2, 5, 1)', ld['keys_ok'], 3)
        sessions = sum(d['sessions_created'] for d in (d1, d2, d5))
        r.eq(name + ' Telethon: one bad_server_salt per session', ld['bad_salts'], sessions)
        bad = sum(d['bad_msgs_sent'] for d in (d1, d2, d5))
        r.eq(name + ' server: bad_msgs_sent == bad_server_salts', bad, ld['bad_salts'],
             'Telethon got bad_msg codes %r' % ld['bad_msgs'])

    async def case_mtproxy(self, name, conn, proxy_index, secret, transport, padded=False):
        px = self.mock.proxies[proxy_index]
        p0 = self.mock.proxy_stats()[proxy_index]['stats']
        c0 = self.mock.counters()
        l0 = self.tlog.snapshot()
        ctx = pure_python_aes_decrypt() if padded else contextlib.nullcontext()
        with ctx:
            c, tries = await self.connect(name, 2, conn,
                                          proxy=('127.0.0.1', px['port'], secret))
            try:
                await self.check_ping(name, c)
                await self.check_nearest(name, c, 2)
            finally:
                await self.aw(c.disconnect(), name + ': disconnect')
        p = delta(self.mock.proxy_stats()[proxy_index]['stats'], p0)
        d = delta(dc_counters(self.mock.counters(), 2), dc_counters(c0, 2))
        ld = log_delta(self.tlog.snapshot(), l0)
        self.res.eq(name + ' proxy: client handshakes accepted', p['handshakes_ok'], tries)
        self.res.eq(name + ' proxy: relayed to DC 2', p['upstream_connects'].get('2', 0), tries)
        self.res.eq(name + ' proxy: no rejects', p['rejects'], {})
        self.res.check(name + ' proxy: bytes relayed both ways',
                       p['bytes_client_to_dc'] > 0 and p['bytes_dc_to_client'] > 0,
                       '%d up, %d down' % (p['bytes_client_to_dc'], p['bytes_dc_to_client']))
        self.check_session_counters(name, d, ld, transport, tries,
                                    extra_methods=[('ping', 1), ('help.getNearestDc', 1)])

    async def case_mtproxy_ee(self, proxy_index):
        """Telethon 1.25's MTProxy classes take 16-byte or dd secrets only."""
        name = 'mtproxy/ee'
        px = self.mock.proxies[proxy_index]
        p0 = self.mock.proxy_stats()[proxy_index]['stats']
        c = self.client(2, connection.ConnectionTcpMTProxyRandomizedIntermediate,
                        proxy=('127.0.0.1', px['port'], EE_SECRET))
        try:
            await self.aw(c.connect(), name + ': connect')
            self.res.check(name + ' Telethon refuses a fake-TLS secret', False,
                           'Telethon connected: it supports ee secrets after all; '
                           'extend this case')
        except ValueError as e:
            self.res.check(name + ' Telethon refuses a fake-TLS secret', True,
                           'ValueError: %s' % e)
            self.res.note('Telethon 1.25 has no fake-TLS (ee) MTProxy support: "%s"' % e)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.disconnect(), 5)
        await asyncio.sleep(0.1)
        p = delta(self.mock.proxy_stats()[proxy_index]['stats'], p0)
        self.res.eq(name + ' proxy: no TLS hello from Telethon', p['tls_hellos_ok'], 0)


async def run_cases(t, res):
    cases = [
        ('transport/full', lambda: t.case_transport('transport/full', connection.ConnectionTcpFull,
                                                    'full')),
        ('transport/abridged', lambda: t.case_transport(
            'transport/abridged', connection.ConnectionTcpAbridged, 'abridged')),
        ('transport/intermediate', lambda: t.case_transport(
            'transport/intermediate', connection.ConnectionTcpIntermediate, 'intermediate')),
        ('transport/obfuscated', lambda: t.case_transport(
            'transport/obfuscated', connection.ConnectionTcpObfuscated, 'obfuscated/abridged')),
        ('transport/obfuscated-padded', lambda: t.case_transport(
            'transport/obfuscated-padded', ConnectionTcpObfuscatedPadded, 'obfuscated/padded',
            padded=True)),
        ('keepalive', t.case_keepalive),
        ('login', t.case_login),
        ('mtproxy/plain-abridged', lambda: t.case_mtproxy(
            'mtproxy/plain-abridged', connection.ConnectionTcpMTProxyAbridged, 0, PROXY_SECRET,
            'obfuscated/abridged')),
        ('mtproxy/plain-intermediate', lambda: t.case_mtproxy(
            'mtproxy/plain-intermediate', connection.ConnectionTcpMTProxyIntermediate, 0,
            PROXY_SECRET, 'obfuscated/intermediate')),
        ('mtproxy/dd', lambda: t.case_mtproxy(
            'mtproxy/dd', connection.ConnectionTcpMTProxyRandomizedIntermediate, 1,
            'dd' + PROXY_SECRET, 'obfuscated/padded', padded=True)),
        ('mtproxy/ee', lambda: t.case_mtproxy_ee(2)),
    ]
    if t.args.only:
        cases = [c for c in cases if any(c[0].startswith(o) for o in t.args.only.split(','))]
    start = time.monotonic()
    for name, fn in cases:
        print('---- %s' % name, flush=True)
        if time.monotonic() - start > t.args.budget:
            res.check(name + ' run', False, 'not run: the %.0f s budget is spent' % t.args.budget)
            continue
        f0 = res.failed
        t0 = time.monotonic()
        k0 = t.tlog.keygen_failed
        outer0 = t.new_connection_retries
        try:
            await fn()
        except Exception as e:  # noqa: BLE001 -- a case that throws is one failure
            res.check(name + ' completed', False, '%s: %s' % (type(e).__name__, e))
        # Key generations Telethon retried anywhere in the case (DC switch and
        # exported senders included) + connects the test redid.
        retries = t.tlog.keygen_failed - k0 + t.new_connection_retries - outer0
        res.retries_total += retries
        res.cases.append((name, time.monotonic() - t0, res.failed == f0, retries))


def check_totals(t, res, final):
    """The mock's totals against everything Telethon did in this run."""
    tot = final['totals']
    lg = t.tlog
    res.check('counters: connections accepted >= Telethon connects',
              tot['tcp_accepted'] >= t.connects,
              'tcp_accepted=%d, connects=%d' % (tot['tcp_accepted'], t.connects))
    res.eq('counters: handshakes == Telethon key generations (ok + failed)',
           tot['handshakes_perm'], lg.keys_ok + lg.keygen_failed,
           'Telethon: %d ok, %d failed' % (lg.keys_ok, lg.keygen_failed))
    res.eq('counters: no temp keys / binds', (tot['handshakes_temp'], tot['binds']), (0, 0))
    res.eq('counters: one bad_server_salt per session (Telethon salt 0)', lg.bad_salts,
           tot['sessions_created'])
    hint = res.ping_bug(lg.bad_msgs)
    res.eq('counters: bad_msgs_sent == bad_server_salts only', tot['bad_msgs_sent'],
           tot['sessions_created'], 'Telethon got bad_msg codes %r%s' %
           (lg.bad_msgs, '; ' + hint if hint else ''))
    for m, n in sorted(t.expect_methods.items()):
        res.eq('counters: rpcs_by_method[%s]' % m, tot['rpcs_by_method'].get(m, 0), n)
    for e, n in sorted(t.expect_errors.items()):
        res.eq('counters: errors[%s]' % e, tot['errors'].get(e, 0), n)
    res.eq('counters: no framing errors / transport errors / dropped answers',
           (tot['framing_errors'], tot['transport_errors_sent'], tot['answers_dropped']),
           (0, 0, 0))
    res.eq('counters: no handshake failures', tot['handshake_failures'], 0)


async def amain(args, res):
    tmp = tempfile.mkdtemp(prefix='interop_telethon_')
    tlog = TelethonLog(args.verbose)
    tl = logging.getLogger('telethon')
    tl.addHandler(tlog)
    tl.setLevel(logging.WARNING)
    tl.propagate = False
    logging.getLogger('telethon.network.mtprotosender').setLevel(logging.DEBUG)
    mock = MockDC(args.mockdc, tmp, verbose=args.verbose,
                  extra_args=['--home-dc', str(HOME_DC), '--files-dc', str(FILES_DC),
                              '--nearest-dc', str(NEAREST_DC),
                              '--proxy', PROXY_SECRET + ':classic',
                              '--proxy', 'dd' + PROXY_SECRET + ':secure',
                              '--proxy', EE_SECRET + ':tls'] + args.mock_arg)
    try:
        mock.start()
        res.check('mock started', len(mock.ports) == 5 and
                  [p['kind'] for p in mock.proxies] == ['plain', 'dd', 'ee'],
                  'DCs %s, proxies %s' % (mock.ports, mock.proxies))
        for dc, pem in mock.public_keys().items():
            try:
                telethon_rsa.add_key(pem, old=False)
            except TypeError:  # Telethon versions without the keyword
                telethon_rsa.add_key(pem)
        t = Interop(args, mock, res, tlog)
        await run_cases(t, res)
        if not args.only:
            final = mock.counters_via_signal()
            res.check('counters file written on SIGUSR1', 'totals' in final)
            check_totals(t, res, final)
    finally:
        rc = mock.stop()
        res.check('mock exited cleanly', rc == 0, 'exit code %s' % rc)
        if res.failed:
            tail = mock.stderr_tail()
            if tail:
                print('---- mtconn-mockdc stderr (tail)\n' + tail)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mockdc', required=True, help='path of the mtconn-mockdc program')
    ap.add_argument('--timeout', type=float, default=30.0,
                    help='bound of every await, seconds (default 30)')
    ap.add_argument('--only', default='', help='comma list of case name prefixes')
    ap.add_argument('--budget', type=float, default=200.0,
                    help='start no case after this many seconds (ctest TIMEOUT is 300)')
    ap.add_argument('--verbose', action='store_true')
    ap.add_argument('--keep', action='store_true', help='keep the temp directory')
    ap.add_argument('--mock-arg', action='append', default=[], metavar='ARG',
                    help='extra mtconn-mockdc argument (repeatable), e.g. --mock-arg=--fault '
                         '--mock-arg=2:delay_ms=100')
    ap.add_argument('--simulate-zero-byte-keys', type=int, default=0, metavar='N',
                    help='self-test: fail the first N key generations client-side')
    args = ap.parse_args()
    if args.simulate_zero_byte_keys:
        simulate_zero_byte_keys(args.simulate_zero_byte_keys)
    res = Results()
    print('Telethon %s (layer %d), Python %s' % (telethon.__version__,
                                                 telethon.tl.alltlobjects.LAYER,
                                                 sys.version.split()[0]), flush=True)
    t0 = time.monotonic()
    try:
        asyncio.run(amain(args, res))
    except Exception as e:  # noqa: BLE001
        res.check('run', False, '%s: %s' % (type(e).__name__, e))
    print('---- summary (%.1f s)' % (time.monotonic() - t0))
    for name, sec, ok, retries in res.cases:
        print('  %-28s %-4s %6.2f s  retries %d' % (name, 'ok' if ok else 'FAIL', sec, retries))
    print('  retries in total: %d (key generations Telethon retried + connects redone)' %
          res.retries_total)
    for n in res.notes:
        print('  note: %s' % n)
    for f in res.failures:
        print('  failed: %s' % f)
    print('interop_telethon: %d passed, %d failed' % (res.passed, res.failed), flush=True)
    return 1 if res.failed else 0


if __name__ == '__main__':
    sys.exit(main())
