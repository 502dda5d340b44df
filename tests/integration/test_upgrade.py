#!/usr/bin/env python3
"""Zero-loss upgrade (`verdictd ctl upgrade`) under steady traffic, on the real kernel.

In the namespace lab (client -- firewall -- server, see nslab.py) the
firewall queues UDP to the server with `iptables -j NFQUEUE` and no
--queue-bypass, and the queue is bound without fail-open: a packet verdictd
does not answer is never delivered, so any loss shows. While the client
sends a paced stream of numbered datagrams, the test

- asks for three upgrades that must fail: a binary that exits at once
  (/bin/false), a path that does not exist, and a configuration file made
  invalid just before. Each reply names the reason, and the same process
  (same pid) keeps serving: datagrams still arrive.
- upgrades five times in a row. Each time the pid in `ctl status` changes,
  and the queue's port id in the kernel's table stays the same (the binding
  never ended: the new process reads the very socket the old one bound).

At the end every datagram sent arrived exactly once, and the kernel's
queue_dropped and user_dropped counters did not move.

The same under systemd's file descriptor store, with the test standing in
for the service manager (PID 1 is not systemd here): verdictd sends its
bound sockets with FDSTORE=1 to NOTIFY_SOCKET (received with SCM_RIGHTS),
stops on SIGTERM leaving them bound, and the next verdictd gets them back
through LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES, like `systemctl restart`.
"""
import os
import array
import json
import re
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

QUEUE = 9
PORT = 5601
RATE_PPS = 400
UPGRADES = 5

# Stands in for systemd passing stored descriptors: moves them to 3, 4, ...,
# sets LISTEN_* for its own pid (kept by exec) and runs verdictd.
LISTEN_WRAPPER = r"""
import fcntl, json, os, sys
p = json.loads(sys.argv[1])
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in p["fds"]]
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_FDS"] = str(len(high))
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDNAMES"] = ":".join(p["names"])
os.execv(p["argv"][0], p["argv"])
"""


class FakeManager:
    """A NOTIFY_SOCKET stand-in: collects notifications and FDSTORE'd descriptors."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.lock = threading.Lock()
        self.messages = []
        self.stored = {}  # name -> fd
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
            except OSError:
                return
            fds = array.array("i")
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            text = data.decode()
            fields = dict(line.partition("=")[::2] for line in text.splitlines())
            with self.lock:
                self.messages.append(text)
                if fields.get("FDSTORE") == "1" and len(fds) == 1:
                    name = fields.get("FDNAME", "stored")
                    if name in self.stored:
                        os.close(fds[0])  # systemd keeps one per socket as well
                    else:
                        self.stored[name] = fds[0]
                else:
                    for fd in fds:
                        os.close(fd)

    def snapshot(self):
        with self.lock:
            return dict(self.stored), list(self.messages)

    def close(self):
        self.sock.close()
        for fd in self.stored.values():
            os.close(fd)


def config_text(socket_path, default="accept"):
    return f"""
[verdict]
default = "{default}"
flush_interval_us = 1000

[metrics]
enabled = false

[control]
socket = "{socket_path}"

[[queues]]
first = {QUEUE}
count = 1
fail_open = false
"""


class UpgradeTest(unittest.TestCase):
    def setUp(self):
        self.lab = nslab.Lab(client_addresses=1)
        self.lab.setup()
        self.addCleanup(self.lab.cleanup)
        self.socket = os.path.join(self.lab.tmpdir, "control.sock")
        self.config = os.path.join(self.lab.tmpdir, "verdictd.toml")
        # No --queue-bypass: without a bound reader the kernel drops, and counts it.
        self.lab.queue_rule(f"--queue-num {QUEUE}", match=f"-p udp --dport {PORT}")
        self.received = []
        self.lock = threading.Lock()

    def ctl(self, *command):
        return self.lab.ns(self.lab.firewall, nslab.verdictd_bin(), "ctl", "--socket",
                           self.socket, *command, check=False, timeout=60)

    def pid(self):
        return int(self.lab.ctl_status(self.socket)["pid"])

    def arrivals(self):
        with self.lock:
            return len(self.received)

    def assert_flowing(self):
        start = self.arrivals()
        nslab.wait_for(lambda: self.arrivals() >= start + RATE_PPS // 10,
                       "datagrams to keep arriving")

    def kernel_row(self):
        return self.lab.nfqueue_stats()[QUEUE]

    def test_five_upgrades_lose_nothing(self):
        with nslab.daemon_log_on_failure(self):
            self._scenario()

    def _scenario(self):
        lab = self.lab
        receiver = nslab.sequence_receiver(lab, PORT, self.received, self.lock)

        nslab.replace_file(self.config, config_text(self.socket))
        self.daemon = lab.start_verdictd("--config", self.config)
        nslab.wait_for(lambda: self.ctl("status").returncode == 0, "the control socket")
        first_pid = self.pid()
        self.assertEqual(first_pid, self.daemon.pid)
        before = self.kernel_row()
        portid = before["portid"]
        self.assertNotEqual(portid, 0)

        stop_file = os.path.join(lab.tmpdir, "stop-sending")
        sender = nslab.sequence_sender(lab, PORT, RATE_PPS, stop_file)
        self.assert_flowing()

        # -- upgrades that must fail, leaving the old process serving ------------
        refused = self.ctl("upgrade", "--binary", "/bin/false")
        self.assertNotEqual(refused.returncode, 0, refused.stdout)
        self.assertIn("ended before it was ready: it exited with status 1", refused.stdout)
        self.assertEqual(self.pid(), first_pid)
        self.assert_flowing()

        missing = os.path.join(lab.tmpdir, "no-such-verdictd")
        refused = self.ctl("upgrade", "--binary", missing)
        self.assertNotEqual(refused.returncode, 0, refused.stdout)
        self.assertIn(f"cannot run the new binary {missing}: No such file or directory",
                      refused.stdout)
        self.assertEqual(self.pid(), first_pid)
        self.assert_flowing()

        nslab.replace_file(self.config, config_text(self.socket, default="dorp"))
        refused = self.ctl("upgrade")
        self.assertNotEqual(refused.returncode, 0, refused.stdout)
        self.assertIn("refused to take over", refused.stdout)
        self.assertIn("verdict.default", refused.stdout)
        self.assertEqual(self.pid(), first_pid)
        self.assert_flowing()
        nslab.replace_file(self.config, config_text(self.socket))

        # -- five upgrades in a row ---------------------------------------------
        pids = [first_pid]
        for _ in range(UPGRADES):
            result = self.ctl("upgrade")
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            m = re.match(r"ok new process (\d+) ", result.stdout)
            self.assertIsNotNone(m, result.stdout)
            new_pid = int(m.group(1))
            self.assertNotIn(new_pid, pids)
            nslab.wait_for(lambda: self.pid() == new_pid, f"pid {new_pid} to serve the control socket")
            nslab.wait_for(lambda: f"upgrade: pid {new_pid} runs the queues" in self.daemon.log(),
                           f"the old process to hand over to {new_pid}")
            self.assertEqual(self.kernel_row()["portid"], portid,
                             "the queue's port id changed: it was bound again")
            pids.append(new_pid)
            self.assert_flowing()
        self.assertEqual(self.daemon.wait(), 0, "the first process did not exit 0 after handing over")

        # -- every datagram arrived exactly once ---------------------------------
        with open(stop_file, "w"):
            pass
        sent = int(sender.communicate(timeout=30)[0].strip())
        nslab.wait_for(lambda: self.arrivals() >= sent, f"all {sent} datagrams to arrive",
                       timeout=30)
        with self.lock:
            received = list(self.received)
        self.assertEqual(len(received), sent, "datagrams lost or duplicated across upgrades")
        self.assertEqual(sorted(received), list(range(sent)))
        after = self.kernel_row()
        self.assertEqual(after["queue_dropped"], before["queue_dropped"])
        self.assertEqual(after["user_dropped"], before["user_dropped"])
        self.assertEqual(after["portid"], portid)
        times = [float(t) for t in re.findall(r"hand-over took ([0-9.]+) ms", self.daemon.log())]
        self.assertEqual(len(times), UPGRADES)
        print(f"upgrade: {sent} datagrams sent, {len(received)} received, "
              f"hand-over ms {times}", file=sys.stderr)

    def test_restart_through_fd_store(self):
        with nslab.daemon_log_on_failure(self):
            self._fd_store_scenario()

    def _fd_store_scenario(self):
        lab = self.lab
        receiver = nslab.sequence_receiver(lab, PORT, self.received, self.lock)

        manager = FakeManager(os.path.join(lab.tmpdir, "notify.sock"))
        self.addCleanup(manager.close)
        env = {"NOTIFY_SOCKET": manager.path, "FDSTORE": "8"}
        nslab.replace_file(self.config, config_text(self.socket))
        self.daemon = lab.start_verdictd("--config", self.config, env=env)
        nslab.wait_for(lambda: len(manager.snapshot()[0]) == 2,
                       "FDSTORE=1 of the queue and control sockets")
        stored, _ = manager.snapshot()
        queue_names = [n for n in stored if n.startswith(f"queue-{QUEUE}-")]
        self.assertEqual(len(queue_names), 1, stored)
        self.assertIn("control", stored)
        before = self.kernel_row()
        portid = before["portid"]
        self.assertEqual(queue_names[0].split("-")[2], str(portid))

        stop_file = os.path.join(lab.tmpdir, "stop-sending")
        sender = nslab.sequence_sender(lab, PORT, RATE_PPS, stop_file)
        self.assert_flowing()

        # Stop (systemctl restart's first half): the store keeps the binding.
        self.assertEqual(self.daemon.stop(), 0)
        self.assertIn("queues left bound in the systemd file descriptor store", self.daemon.log())
        self.assertEqual(self.kernel_row()["portid"], portid, "the queue was unbound at stop")

        names = sorted(stored)
        params = {"fds": [stored[n] for n in names], "names": names,
                  "argv": [nslab.verdictd_bin(), "--config", self.config]}
        self.daemon = nslab.Verdictd(lab, lab.firewall, [], env=env,
                                     prefix=(sys.executable, "-c", LISTEN_WRAPPER,
                                             json.dumps(params)),
                                     binary="--", pass_fds=params["fds"])
        self.daemon.wait_ready()
        self.assertIn("systemd file descriptor store: taking over 1 bound queue socket(s)",
                      self.daemon.log())
        self.assertIn("taken over from the old process", self.daemon.log())
        self.assertEqual(self.pid(), self.daemon.pid)
        self.assertEqual(self.kernel_row()["portid"], portid, "the restart bound the queue again")
        self.assert_flowing()

        with open(stop_file, "w"):
            pass
        sent = int(sender.communicate(timeout=30)[0].strip())
        nslab.wait_for(lambda: self.arrivals() >= sent, f"all {sent} datagrams to arrive",
                       timeout=30)
        with self.lock:
            received = list(self.received)
        self.assertEqual(len(received), sent, "datagrams lost or duplicated across the restart")
        self.assertEqual(sorted(received), list(range(sent)))
        after = self.kernel_row()
        self.assertEqual(after["queue_dropped"], before["queue_dropped"])
        self.assertEqual(after["user_dropped"], before["user_dropped"])


if __name__ == "__main__":
    unittest.main()
