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
"""
import os
import re
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

QUEUE = 9
PORT = 5601
RATE_PPS = 400
UPGRADES = 5

# Paced sender, one datagram per sequence number, until the stop file exists.
SENDER = r"""
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

# Prints every sequence number that arrives, as it arrives.
RECEIVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("READY", flush=True)
while True:
    print(int.from_bytes(s.recv(64)[:8], "big"), flush=True)
"""


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
        receiver = lab.popen(lab.server, [sys.executable, "-c", RECEIVER, str(PORT)])
        self.assertEqual(receiver.stdout.readline().strip(), "READY")

        def collect():
            for line in receiver.stdout:
                with self.lock:
                    self.received.append(int(line))
        threading.Thread(target=collect, daemon=True).start()

        nslab.replace_file(self.config, config_text(self.socket))
        self.daemon = lab.start_verdictd("--config", self.config)
        nslab.wait_for(lambda: self.ctl("status").returncode == 0, "the control socket")
        first_pid = self.pid()
        self.assertEqual(first_pid, self.daemon.pid)
        before = self.kernel_row()
        portid = before["portid"]
        self.assertNotEqual(portid, 0)

        stop_file = os.path.join(lab.tmpdir, "stop-sending")
        sender = lab.popen(lab.client, [sys.executable, "-c", SENDER, lab.SERVER, str(PORT),
                                        str(RATE_PPS), stop_file])
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


if __name__ == "__main__":
    unittest.main()
