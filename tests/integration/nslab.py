"""Namespace lab for verdictd's real-kernel tests (Python standard library only).

A Lab builds three network namespaces joined by veth pairs:

    client (10.201.1.10 .. 10.201.1.10+N-1)  --  firewall (10.201.1.1 | 10.201.2.1)  --  server (10.201.2.2)

The firewall forwards, so traffic from client to server crosses its FORWARD
chain, where tests install `iptables -j NFQUEUE` rules and run verdictd. The
client has several source addresses because `--queue-balance` hashes
addresses (not ports): spreading over queues needs several of them.

Names carry the pid (and a per-process counter), so parallel runs never
collide. Everything created is removed by Lab.cleanup(), which runs from
`with Lab() as lab:`, from atexit and on SIGTERM, also when a test fails.

Other tests may add helpers here; keep existing signatures backward compatible.
"""

import atexit
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77  # CTest SKIP_RETURN_CODE

_labs = []
_counter = itertools.count()


def strict():
    """CI mode (.ci/run sets VERDICTD_STRICT=1): a test that would skip fails."""
    return os.environ.get("VERDICTD_STRICT") == "1"


def skip(reason):
    """Prints why the test is skipped and exits with the skip code; in CI mode
    a skip is a failure (exit 1), since a skipped kernel test proves nothing."""
    if strict():
        print(f"FAIL: would skip, and CI mode allows no skip: {reason}", flush=True)
        sys.exit(1)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def skip_test(testcase, reason):
    """unittest's skipTest, except in CI mode, where the test fails instead."""
    if strict():
        testcase.fail(f"would skip, and CI mode allows no skip: {reason}")
    testcase.skipTest(reason)


def require_root_tools():
    """Skips (exit 77, printed reason) unless root with ip and iptables."""
    if os.geteuid() != 0:
        skip("needs root: builds network namespaces and installs iptables NFQUEUE rules")
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            skip(f"needs the '{tool}' command")
    if not os.path.exists("/proc/net/netfilter/nfnetlink_queue"):
        skip("kernel without nfnetlink_queue")


def verdictd_bin():
    path = os.environ.get("VERDICTD_BIN")
    if not path:
        build = os.environ.get("VERDICTD_BUILD_DIR", "build")
        path = os.path.join(build, "service", "verdictd")
    if not os.access(path, os.X_OK):
        skip(f"verdictd binary not found at {path} (set VERDICTD_BIN)")
    return path


def parse_exposition(text):
    """Prometheus text format as {(name, ((label, value), ...)): float}."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, ()
        if "{" in head:
            name, _, rest = head.partition("{")
            pairs = []
            for item in rest.rstrip("}").split(","):
                if item:
                    key, _, val = item.partition("=")
                    pairs.append((key, val.strip('"')))
            labels = tuple(sorted(pairs))
        samples[(name, labels)] = float(value)
    return samples


def run(cmd, check=True, timeout=30, **kwargs):
    """Runs a command (list), returns CompletedProcess with text output."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def wait_for(predicate, what, timeout=10.0):
    """Polls predicate() until it is true; fails the test (AssertionError) after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def daemon_log_on_failure(holder):
    """Prints holder.daemon's log (a Verdictd, when set) to stderr if the block
    raises, so a failed assertion comes with what verdictd said."""
    try:
        yield
    except BaseException:
        daemon = getattr(holder, "daemon", None)
        if daemon is not None:
            print("verdictd output:\n" + daemon.log(), file=sys.stderr)
        raise


def replace_file(path, text):
    """Writes `text` to `path` through a rename (a new inode), as editors and
    configuration management do."""
    temp = path + ".new"
    with open(temp, "w") as out:
        out.write(text)
    os.replace(temp, path)


# A sequence stream: the sender sends datagram 0, 1, 2, ... paced at a rate
# until a stop file exists, then prints how many it sent; the receiver prints
# every sequence number as it arrives. Loss and duplicates are then exact.
_SEQUENCE_SENDER = r"""
import os, socket, sys, time
dst, port, rate, stop = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
seq, start = 0, time.monotonic()
while not os.path.exists(stop):
    due = start + seq / rate
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    s.sendto(seq.to_bytes(8, "big"), (dst, port))
    seq += 1
print(seq, flush=True)
"""

_SEQUENCE_RECEIVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("READY", flush=True)
while True:
    print(int.from_bytes(s.recv(64)[:8], "big"), flush=True)
"""


def sequence_receiver(lab, port, received, lock):
    """Starts the sequence receiver in the server namespace; a thread appends
    each arriving number to `received` under `lock`. Returns the process."""
    receiver = lab.popen(lab.server, [sys.executable, "-c", _SEQUENCE_RECEIVER, str(port)])
    line = receiver.stdout.readline().strip()
    if line != "READY":
        raise AssertionError(f"sequence receiver did not start: {line!r}")

    def collect():
        for arrived in receiver.stdout:
            with lock:
                received.append(int(arrived))
    threading.Thread(target=collect, daemon=True).start()
    return receiver


def sequence_sender(lab, port, rate, stop_file):
    """Starts the paced sequence sender in the client namespace; it stops once
    `stop_file` exists and prints how many datagrams it sent."""
    return lab.popen(lab.client, [sys.executable, "-c", _SEQUENCE_SENDER, lab.SERVER, str(port),
                                  str(rate), stop_file])


# Programs run inside the namespaces with `python3 -c`: a paced UDP sender
# and a counting receiver. Parameters come as one JSON argument.
_SENDER = r"""
import json, socket, sys, time
p = json.loads(sys.argv[1])
socks = []
for src in p["sources"]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    socks.append(s)
payload = b"v" * p["size"]
start = time.monotonic()
for i in range(p["count"]):
    if p["rate"]:
        due = start + i / p["rate"]
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    socks[i % len(socks)].sendto(payload, (p["dst"], p["port"]))
print(json.dumps({"sent": p["count"], "start": start, "seconds": time.monotonic() - start}),
      flush=True)
"""

_RECEIVER = r"""
import json, socket, sys, time
p = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE: count, never drop
except OSError:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
s.bind(("0.0.0.0", p["port"]))
print("READY", flush=True)
total, by_source, longest = 0, {}, 0
first_at = last_at = None  # CLOCK_MONOTONIC is one clock for every namespace
deadline = time.monotonic() + p["deadline"]
last = None
reached = None
while True:
    now = time.monotonic()
    if p["expect"] is not None and total >= p["expect"]:
        reached = reached or now
        if now - reached >= p["linger"]:
            break
    if now >= deadline:
        break
    if last is not None and now - last >= p["idle"]:
        break
    s.settimeout(min(0.05, max(0.001, deadline - now)))
    try:
        data, (src, _) = s.recvfrom(65535)
    except socket.timeout:
        continue
    total += 1
    last = time.monotonic()
    first_at = first_at or last
    last_at = last
    by_source[src] = by_source.get(src, 0) + 1
    longest = max(longest, len(data))
print(json.dumps({"received": total, "by_source": by_source, "longest": longest,
                  "first_at": first_at, "last_at": last_at}), flush=True)
"""

_TCP_SERVER = r"""
import json, socket, sys
p = json.loads(sys.argv[1])
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", p["port"]))
srv.listen(1)
srv.settimeout(p["deadline"])
print("READY", flush=True)
conn, _ = srv.accept()
conn.settimeout(p["deadline"])
total = 0
while True:
    data = conn.recv(1 << 20)
    if not data:
        break
    total += len(data)
print(json.dumps({"bytes": total}), flush=True)
"""

_TCP_CLIENT = r"""
import json, socket, sys
p = json.loads(sys.argv[1])
c = socket.create_connection((p["dst"], p["port"]), timeout=p["deadline"])
chunk = b"t" * (256 * 1024)
left = p["bytes"]
while left > 0:
    n = min(left, len(chunk))
    c.sendall(chunk[:n])
    left -= n
c.shutdown(socket.SHUT_WR)
c.recv(1)
c.close()
print(json.dumps({"sent": p["bytes"]}), flush=True)
"""


class Verdictd:
    """A verdictd process started in a namespace; its stderr goes to a file."""

    def __init__(self, lab, ns, args, env=None, prefix=(), binary=None, pass_fds=()):
        self.lab = lab
        self.args = list(args)
        fd, self.log_path = tempfile.mkstemp(prefix="verdictd-", suffix=".log", dir=lab.tmpdir)
        self._log = os.fdopen(fd, "w")
        full_env = dict(os.environ)
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        if env:
            full_env.update(env)
        cmd = ["ip", "netns", "exec", ns, *prefix, binary or verdictd_bin(), *self.args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=full_env,
                                     pass_fds=tuple(pass_fds))
        lab._processes.append(self.proc)
        lab._closers.append(self._log.close)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, timeout=20):
        """Waits for the 'running' line; raises with the log if verdictd exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " running " in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"verdictd exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        raise RuntimeError(f"verdictd not ready after {timeout}s:\n{self.log()}")

    def wait(self, timeout=30):
        """Waits for exit; returns the exit code."""
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` (default SIGTERM) and waits; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def counters(self):
        """Per-queue counters from the summary lines verdictd logs when it stops:
        {queue: {"packets": n, "accept": n, "gso_packets": n, ...}}."""
        result = {}
        for line in self.log().splitlines():
            m = re.search(r"queue (\d+): (packets \d+.*)$", line)
            if not m:
                continue
            fields = {}
            for item in m.group(2).split(", "):
                name, _, value = item.rpartition(" ")
                if value.isdigit():
                    fields[name] = int(value)
            result[int(m.group(1))] = fields
        return result


class Lab:
    CLIENT_NET = "10.201.1"
    SERVER_NET = "10.201.2"
    SERVER = "10.201.2.2"

    def __init__(self, client_addresses=16, mtu=1500):
        tag = f"vd{os.getpid()}x{next(_counter)}"
        self.client = f"{tag}c"
        self.firewall = f"{tag}f"
        self.server = f"{tag}s"
        self.client_addresses = [f"{self.CLIENT_NET}.{10 + i}" for i in range(client_addresses)]
        self.mtu = mtu
        self._processes = []
        self._closers = []
        self._created = []
        self.tmpdir = None
        self._up = False

    # --- lifetime ---------------------------------------------------------
    def __enter__(self):
        self.setup()
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def setup(self):
        require_root_tools()
        _labs.append(self)
        self.tmpdir = tempfile.mkdtemp(prefix=f"{self.client[:-1]}-")
        for ns in (self.client, self.firewall, self.server):
            run(["ip", "netns", "add", ns])
            self._created.append(ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
        # client c0 <-> f0 firewall f1 <-> s0 server
        self.ns(self.client, "ip", "link", "add", "c0", "mtu", str(self.mtu), "type", "veth",
                "peer", "name", "f0", "mtu", str(self.mtu), "netns", self.firewall)
        self.ns(self.firewall, "ip", "link", "add", "f1", "mtu", str(self.mtu), "type", "veth",
                "peer", "name", "s0", "mtu", str(self.mtu), "netns", self.server)
        for i, address in enumerate(self.client_addresses):
            self.ns(self.client, "ip", "addr", "add", f"{address}/24", "dev", "c0")
        self.ns(self.firewall, "ip", "addr", "add", f"{self.CLIENT_NET}.1/24", "dev", "f0")
        self.ns(self.firewall, "ip", "addr", "add", f"{self.SERVER_NET}.1/24", "dev", "f1")
        self.ns(self.server, "ip", "addr", "add", f"{self.SERVER}/24", "dev", "s0")
        self.ns(self.client, "ip", "link", "set", "c0", "up")
        self.ns(self.firewall, "ip", "link", "set", "f0", "up")
        self.ns(self.firewall, "ip", "link", "set", "f1", "up")
        self.ns(self.server, "ip", "link", "set", "s0", "up")
        self.ns(self.client, "ip", "route", "add", "default", "via", f"{self.CLIENT_NET}.1")
        self.ns(self.server, "ip", "route", "add", "default", "via", f"{self.SERVER_NET}.1")
        self.ns(self.firewall, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._up = True

    def cleanup(self):
        for proc in self._processes:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                    proc.wait(timeout=10)
                except Exception:
                    pass
        self._processes.clear()
        for close in self._closers:
            close()
        self._closers.clear()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        for ns in reversed(self._created):
            # Kill anything left inside, then delete (veths go with their namespace).
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", ns], check=False)
        self._created.clear()
        if self in _labs:
            _labs.remove(self)

    # --- running things ---------------------------------------------------
    def ns(self, ns, *cmd, check=True, timeout=30):
        return run(["ip", "netns", "exec", ns, *cmd], check=check, timeout=timeout)

    def popen(self, ns, cmd, **kwargs):
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        self._processes.append(proc)
        return proc

    # --- firewall ---------------------------------------------------------
    def queue_rule(self, queue_spec, match="-p udp", chain="FORWARD"):
        """Installs `iptables -A chain match -j NFQUEUE queue_spec` in the firewall,
        e.g. queue_spec="--queue-balance 0:1 --queue-bypass"."""
        self.ns(self.firewall, "iptables", "-A", chain, *match.split(), "-j", "NFQUEUE",
                *queue_spec.split())

    def flush_rules(self, chain="FORWARD"):
        self.ns(self.firewall, "iptables", "-F", chain)

    def nfqueue_stats(self, ns=None):
        """The kernel's /proc/net/netfilter/nfnetlink_queue of a namespace (default
        firewall) as {queue: {"portid", "queue_total", "copy_mode", "copy_range",
        "queue_dropped", "user_dropped", "id_sequence"}}."""
        text = self.ns(ns or self.firewall, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
        names = ["portid", "queue_total", "copy_mode", "copy_range", "queue_dropped",
                 "user_dropped", "id_sequence"]
        stats = {}
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 8:
                stats[int(fields[0])] = dict(zip(names, map(int, fields[1:8])))
        return stats

    def ctl(self, socket_path, command, ns=None):
        """`verdictd ctl --socket socket_path command` in a namespace (default firewall)."""
        return self.ns(ns or self.firewall, verdictd_bin(), "ctl", "--socket", socket_path,
                       command, check=False)

    def ctl_status(self, socket_path, ns=None):
        """`verdictd ctl status` as {key: value} (raises with the reply when it fails)."""
        result = self.ctl(socket_path, "status", ns=ns)
        if result.returncode != 0:
            raise AssertionError(f"verdictd ctl status failed: {result.stdout}{result.stderr}")
        return dict(line.partition(" ")[::2] for line in result.stdout.splitlines()[1:])

    def start_verdictd(self, *args, ns=None, env=None, prefix=(), wait_ready=True, binary=None):
        """Starts $VERDICTD_BIN (or `binary`) with `args` in a namespace (default firewall)."""
        daemon = Verdictd(self, ns or self.firewall, args, env=env, prefix=prefix, binary=binary)
        if wait_ready:
            daemon.wait_ready()
        return daemon

    # --- traffic ----------------------------------------------------------
    def udp_receiver(self, port, expect=None, idle=1.0, deadline=30.0, linger=0):
        """Starts a counting UDP receiver in the server namespace. It ends
        `linger` seconds after `expect` datagrams arrived (so extra ones would be
        seen), after `idle` seconds without a datagram once one arrived, or at
        `deadline`. Call .result() on the returned handle:
        {"received": n, "by_source": {addr: n}, "longest": bytes}."""
        params = {"port": port, "expect": expect, "idle": idle, "deadline": deadline,
                  "linger": linger}
        proc = self.popen(self.server, [sys.executable, "-c", _RECEIVER, json.dumps(params)])
        line = proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"receiver did not start: {line} {proc.stderr.read()}")
        return _JsonProcess(proc, deadline + 30)

    def udp_send(self, port, count, size=100, rate=0, sources=None, background=False):
        """Sends `count` datagrams of `size` bytes from the client, round robin over
        `sources` (default: all client addresses), paced at `rate` per second
        (0: as fast as possible). Returns the sender's JSON (or a handle with
        .result() when `background`)."""
        params = {"dst": self.SERVER, "port": port, "count": count, "size": size, "rate": rate,
                  "sources": sources or self.client_addresses}
        proc = self.popen(self.client, [sys.executable, "-c", _SENDER, json.dumps(params)])
        handle = _JsonProcess(proc, 120)
        return handle if background else handle.result()

    def udp_exchange(self, port, count, size=100, rate=0, sources=None, idle=1.0):
        """Sends `count` datagrams; returns the receiver's result plus the
        sender's "start" (CLOCK_MONOTONIC) and "seconds"."""
        receiver = self.udp_receiver(port, expect=count, idle=idle)
        sent = self.udp_send(port, count, size=size, rate=rate, sources=sources)
        result = receiver.result()
        result["start"] = sent["start"]
        result["seconds"] = sent["seconds"]
        return result

    def tcp_transfer(self, port, nbytes, deadline=60.0):
        """Streams `nbytes` from client to server over TCP; returns bytes received."""
        server = self.popen(self.server, [sys.executable, "-c", _TCP_SERVER,
                                          json.dumps({"port": port, "deadline": deadline})])
        if server.stdout.readline().strip() != "READY":
            raise RuntimeError(f"tcp server did not start: {server.stderr.read()}")
        client = self.popen(self.client, [sys.executable, "-c", _TCP_CLIENT,
                                          json.dumps({"dst": self.SERVER, "port": port,
                                                      "bytes": nbytes, "deadline": deadline})])
        _JsonProcess(client, deadline + 10).result()
        return _JsonProcess(server, deadline + 10).result()["bytes"]


class _JsonProcess:
    def __init__(self, proc, timeout):
        self.proc = proc
        self.timeout = timeout

    def result(self):
        out, err = self.proc.communicate(timeout=self.timeout)
        lines = [l for l in out.splitlines() if l.strip() and l.strip() != "READY"]
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(f"helper failed ({self.proc.returncode}): {err.strip()}")
        return json.loads(lines[-1])


def _cleanup_all():
    for lab in list(_labs):
        lab.cleanup()


def _on_signal(signum, frame):
    _cleanup_all()
    sys.exit(128 + signum)


atexit.register(_cleanup_all)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    try:
        signal.signal(_sig, _on_signal)
    except (ValueError, OSError):
        pass
