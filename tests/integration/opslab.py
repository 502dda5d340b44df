"""Helpers for the operations tests (systemd notify, metrics scrapes, the
control socket), on top of nslab. Python standard library only."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

_FETCH = r"""
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"""


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET: every
    message verdictd sends is kept, in order, as a dict of its KEY=VALUE lines
    (with "_t", the monotonic receive time)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)  # verdictd may run as another user
        self.sock.settimeout(0.05)
        self.messages = []
        self.hooks = []  # callables run on the listener thread for each message
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            message = {"_t": time.monotonic()}
            for line in data.decode().split("\n"):
                key, sep, value = line.partition("=")
                if sep:
                    message[key] = value
            for hook in self.hooks:
                hook(message)
            with self._lock:
                self.messages.append(message)

    def snapshot(self):
        with self._lock:
            return list(self.messages)

    def wait_for(self, predicate, what, timeout=20.0, start=0):
        """Waits for a message (index >= start) matching predicate; returns its index."""
        found = []

        def check():
            for i, message in enumerate(self.snapshot()[start:], start):
                if predicate(message):
                    found.append(i)
                    return True
            return False

        nslab.wait_for(check, what, timeout=timeout)
        return found[0]

    def close(self):
        self._stop = True
        self._thread.join(timeout=5)
        self.sock.close()


def control_command(lab, socket_path, command, ns=None):
    """One raw command on the control socket (also commands `verdictd ctl`
    does not offer, such as the test build's `debug stall`); returns the reply."""
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM);s.connect(sys.argv[1])\n"
            "s.sendall(sys.argv[2].encode()+b'\\n');s.shutdown(socket.SHUT_WR)\n"
            "out=b''\n"
            "while True:\n"
            "    d=s.recv(4096)\n"
            "    if not d: break\n"
            "    out+=d\n"
            "sys.stdout.write(out.decode())\n")
    return lab.ns(ns or lab.firewall, sys.executable, "-c", code, socket_path, command).stdout


def scrape(lab, port=9470, ns=None):
    """verdictd's /metrics in a namespace (default firewall), parsed as
    {(name, ((label, value), ...)): float}."""
    text = lab.ns(ns or lab.firewall, sys.executable, "-c", _FETCH,
                  f"http://127.0.0.1:{port}/metrics").stdout
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


def metric(samples, name, **labels):
    """The value of one sample; None when absent."""
    want = tuple(sorted((k, str(v)) for k, v in labels.items()))
    return samples.get((name, want))


def has_family(samples, name):
    return any(n == name for n, _ in samples)


def test_hooks_bin():
    """The test build's daemon (with `debug stall`); skips when not built."""
    path = os.environ.get("VERDICTD_TEST_HOOKS_BIN")
    if not path:
        build = os.environ.get("VERDICTD_BUILD_DIR", "build")
        path = os.path.join(build, "service", "verdictd-test-hooks")
    if not os.access(path, os.X_OK):
        nslab.skip(f"verdictd-test-hooks not built at {path} (configure with -DVERDICTD_TEST_HOOKS=ON)")
    return path
