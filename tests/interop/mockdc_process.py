"""mtconn-mockdc as a child process, for interop tests (stdlib only).

The mock prints its ports as one JSON line at start (--json-ports) and
answers stdin commands ("counters", "proxies", "ports", "quit") with one
JSON line each on stdout; SIGUSR1 makes it write the counters JSON to the
--counters-file. Every read here is bounded by a deadline, and stop() ends
the process however it behaves (quit, then SIGTERM, then SIGKILL).
"""
import json
import os
import select
import signal
import subprocess
import time


class MockDCError(RuntimeError):
    pass


class MockDC:
    def __init__(self, prog, workdir, extra_args=(), verbose=False):
        self.prog = prog
        self.workdir = workdir
        self.keys_dir = os.path.join(workdir, 'keys')
        self.counters_file = os.path.join(workdir, 'counters.json')
        self.stderr_path = os.path.join(workdir, 'mockdc.stderr')
        self.extra_args = list(extra_args)
        self.verbose = verbose
        self.proc = None
        self._buf = b''
        self.ports = {}       # dc id -> port
        self.proxies = []     # [{"port":..,"secret":..,"modes":..}]

    def start(self, timeout=20.0):
        os.makedirs(self.keys_dir, exist_ok=True)
        args = [self.prog, '--json-ports', '--print-public-keys', self.keys_dir,
                '--counters-file', self.counters_file] + self.extra_args
        if self.verbose:
            args.append('--verbose')
        self._stderr = open(self.stderr_path, 'wb')
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, bufsize=0)
        first = self._readline(timeout)
        info = json.loads(first)
        self.ports = {d['id']: d['port'] for d in info['dcs']}
        self.proxies = info.get('proxies', [])
        return info

    def public_keys(self):
        """PKCS#1 PEM text of every DC's key, by DC id."""
        out = {}
        for dc in sorted(self.ports):
            with open(os.path.join(self.keys_dir, 'dc%d.pub.pem' % dc)) as f:
                out[dc] = f.read()
        return out

    def _readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b'\n' not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise MockDCError('mtconn-mockdc: no answer within %.0f s' % timeout)
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise MockDCError('mtconn-mockdc: stdout closed (exit code %s)' % self.proc.poll())
            self._buf += chunk
        line, self._buf = self._buf.split(b'\n', 1)
        return line.decode()

    def command(self, cmd, timeout=20.0):
        """Send one stdin command and parse its one-line JSON answer."""
        self.proc.stdin.write((cmd + '\n').encode())
        self.proc.stdin.flush()
        return json.loads(self._readline(timeout))

    def counters(self):
        return self.command('counters')

    def proxy_stats(self):
        return self.command('proxies')['proxies']

    def counters_via_signal(self, timeout=10.0):
        """SIGUSR1 -> the mock writes --counters-file (checked every 100 ms)."""
        try:
            os.remove(self.counters_file)
        except FileNotFoundError:
            pass
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.counters_file):  # renamed into place: complete
                with open(self.counters_file) as f:
                    return json.load(f)
            time.sleep(0.05)
        raise MockDCError('mtconn-mockdc: no counters file after SIGUSR1')

    def stop(self, timeout=10.0):
        p = self.proc
        if p is None:
            return None
        try:
            if p.poll() is None:
                try:
                    p.stdin.write(b'quit\n')
                    p.stdin.flush()
                except OSError:
                    pass
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    p.terminate()
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(5)
        finally:
            for f in (p.stdin, p.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self._stderr.close()
        return p.returncode

    def stderr_tail(self, n=40):
        try:
            with open(self.stderr_path, 'rb') as f:
                lines = f.read().decode(errors='replace').splitlines()
        except OSError:
            return ''
        return '\n'.join(lines[-n:])


def dc_counters(counters, dc_id):
    for d in counters['dcs']:
        if d['id'] == dc_id:
            return d
    raise KeyError(dc_id)


def delta(after, before):
    """after - before for a counters object of one DC (numbers and name maps)."""
    out = {}
    for k, v in after.items():
        b = before.get(k)
        if isinstance(v, dict):
            b = b or {}
            out[k] = {n: c - b.get(n, 0) for n, c in v.items() if c - b.get(n, 0)}
        elif isinstance(v, int) and isinstance(b, int):
            out[k] = v - b
        else:
            out[k] = v
    return out
