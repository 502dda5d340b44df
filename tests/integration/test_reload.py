#!/usr/bin/env python3
"""Live reload of verdictd under steady traffic, on the real kernel.

In the namespace lab (client -- firewall -- server, see nslab.py) the
firewall queues UDP to the server with `iptables -j NFQUEUE`, and verdictd
gives the verdicts. While the client sends a steady stream, the test switches
verdictd's default verdict accept -> drop -> accept several times by
rewriting its config file and sending SIGHUP, twice through
`verdictd ctl reload`, and once offers an invalid file. It checks that
arrivals stop under drop and resume under accept, that the invalid file
changes nothing and is counted, and at the end that every packet got exactly
one verdict: verdictd's per-verdict counts sum to the packets it received,
which equal the packets sent, and the server received exactly the accepted
ones, each once.
"""
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

QUEUE = 7
PORT = 5555
RATE_PPS = 400

def config_text(default, socket_path):
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
cpus = [0]
"""


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.lab = nslab.Lab(client_addresses=1)
        self.lab.setup()
        self.addCleanup(self.lab.cleanup)
        self.bin = nslab.verdictd_bin()
        self.socket = os.path.join(self.lab.tmpdir, "control.sock")
        self.config = os.path.join(self.lab.tmpdir, "verdictd.toml")
        self.lab.queue_rule(f"--queue-num {QUEUE}", match=f"-p udp --dport {PORT}")
        self.received = []
        self.lock = threading.Lock()
        self.switches = 0

    # -- helpers --------------------------------------------------------------

    def write_config(self, text):
        nslab.replace_file(self.config, text)

    def ctl(self, command):
        return self.lab.ctl(self.socket, command)

    def status(self):
        return self.lab.ctl_status(self.socket)

    def wait_for(self, predicate, what, timeout=10.0):
        nslab.wait_for(predicate, what, timeout)

    def arrivals(self):
        with self.lock:
            return len(self.received)

    def switch(self, verdict, via):
        """Makes `verdict` the default verdict through `via`; waits until it runs."""
        before = int(self.status()["generation"])
        self.write_config(config_text(verdict, self.socket))
        if via == "SIGHUP":
            self.daemon.proc.send_signal(signal.SIGHUP)
        else:
            result = self.ctl("reload")
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertTrue(result.stdout.startswith("ok reloaded: generation"), result.stdout)
        self.wait_for(lambda: int(self.status()["generation"]) == before + 1,
                      f"the reload to {verdict} via {via}")
        self.assertEqual(self.status()["default_verdict"], verdict)
        self.switches += 1

    def assert_flowing(self, seconds):
        start = self.arrivals()
        time.sleep(seconds)
        # A good part of what the sender offered (its pacing slips on a busy machine).
        self.assertGreater(self.arrivals() - start, RATE_PPS * seconds / 10,
                           "arrivals did not resume under accept")

    def assert_stopped(self, seconds):
        # A batch that started before the switch may still finish on the old
        # policy; once the worker gave its first drop it runs the new one, and
        # no accept verdict may follow.
        drops = int(self.status()["verdicts_drop"])
        self.wait_for(lambda: int(self.status()["verdicts_drop"]) > drops,
                      "the first drop verdict under the new policy")
        status = self.status()
        accepted = int(status["verdicts_accept"])
        # The receiver may lag behind on a busy machine: let it catch up with
        # what was accepted before the switch.
        self.wait_for(lambda: self.arrivals() == accepted,
                      "the datagrams accepted before the switch to arrive")
        time.sleep(seconds)
        after = self.status()
        self.assertEqual(int(after["verdicts_accept"]), accepted, "accept verdicts under drop")
        self.assertEqual(self.arrivals(), accepted, "packets arrived while the verdict was drop")
        # ... while verdictd kept receiving (and dropping) them.
        self.assertGreater(int(after["packets"]) - int(status["packets"]), RATE_PPS * seconds / 10)

    # -- the tests ------------------------------------------------------------

    def test_check_config_exit_codes(self):
        """--check-config: 0 for a valid file, 1 with every error for a bad one."""
        self.write_config(config_text("accept", self.socket))
        good = nslab.run([self.bin, "--check-config", self.config], check=False)
        self.assertEqual(good.returncode, 0, good.stderr)
        self.write_config(config_text("dorp", self.socket).replace("count = 1", "count = 1\ncoutn = 2"))
        bad = nslab.run([self.bin, "--check-config", self.config], check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn('verdict.default: expected one of', bad.stderr)
        self.assertIn('queues[0].coutn: unknown key; did you mean "count"?', bad.stderr)
        self.assertIn(": 2 error(s)", bad.stderr)

    def test_switching_default_verdict_live(self):
        with nslab.daemon_log_on_failure(self):
            self._scenario()

    def _scenario(self):
        lab = self.lab
        receiver = nslab.sequence_receiver(lab, PORT, self.received, self.lock)

        self.write_config(config_text("accept", self.socket))
        self.daemon = lab.start_verdictd("--config", self.config)
        self.wait_for(lambda: self.ctl("status").returncode == 0, "the control socket")

        stop_file = os.path.join(lab.tmpdir, "stop-sending")
        sender = nslab.sequence_sender(lab, PORT, RATE_PPS, stop_file)

        self.assert_flowing(1.0)
        self.switch("drop", "SIGHUP")
        self.assert_stopped(0.8)
        self.switch("accept", "SIGHUP")
        self.assert_flowing(0.8)

        # An invalid file: refused, counted, and nothing changes.
        status = self.status()
        self.write_config(config_text("dorp", self.socket))
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.wait_for(lambda: int(self.status()["reload_failures"]) ==
                      int(status["reload_failures"]) + 1, "the invalid reload to be counted")
        after = self.status()
        self.assertEqual(after["generation"], status["generation"])
        self.assertEqual(after["default_verdict"], "accept")
        self.assertIn('did you mean "drop"', after["last_reload"])
        self.assert_flowing(0.6)

        self.switch("drop", "ctl")
        self.assert_stopped(0.6)
        self.switch("accept", "SIGHUP")
        self.assert_flowing(0.6)
        self.switch("drop", "SIGHUP")
        self.assert_stopped(0.6)
        self.switch("accept", "ctl")
        self.assert_flowing(0.6)

        open(stop_file, "w").close()
        out, _ = sender.communicate(timeout=10)
        sent = int(out.strip())
        # The last verdicts go out within the flush bound; the last datagrams arrive.
        self.wait_for(lambda: int(self.status()["packets"]) == sent,
                      f"verdictd to receive all {sent} datagrams sent")
        self.wait_for(lambda: self.arrivals() == int(self.status()["verdicts_accept"]),
                      "the accepted datagrams to arrive")
        status = self.status()
        verdicts = {key[len("verdicts_"):]: int(value) for key, value in status.items()
                    if key.startswith("verdicts_")}
        with self.lock:
            received = list(self.received)

        self.assertEqual(int(status["reloads"]), self.switches)
        self.assertEqual(int(status["reload_failures"]), 1)
        # Every packet exactly one verdict, and only accept or drop.
        self.assertEqual(sum(verdicts.values()), sent, status)
        self.assertEqual(verdicts["accept"] + verdicts["drop"], sent, status)
        self.assertGreater(verdicts["drop"], 0)
        # The server got exactly the accepted datagrams, each once.
        self.assertEqual(len(received), verdicts["accept"])
        self.assertEqual(len(set(received)), len(received), "a datagram arrived twice")
        # Nothing was lost in the kernel queue.
        stats = lab.nfqueue_stats().get(QUEUE, {})
        self.assertEqual(stats.get("queue_dropped"), 0, stats)
        self.assertEqual(stats.get("user_dropped"), 0, stats)

        self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
        log = self.daemon.log()
        self.assertIn("reload (SIGHUP): generation", log)
        self.assertIn("reload (control socket): generation", log)
        self.assertRegex(log, r"(?s)reload \(SIGHUP\) failed.*did you mean \"drop\"")
        # verdictd's own exit summary agrees.
        summary = self.daemon.counters().get(QUEUE, {})
        self.assertTrue(summary, f"no exit summary for queue {QUEUE} in the log:\n{log}")
        self.assertEqual(summary.get("packets"), sent, summary)
        self.assertEqual(summary.get("accept"), len(received), summary)


if __name__ == "__main__":
    nslab.require_root_tools()
    unittest.main()
