"""A worker that gives up ends the daemon, so the service manager restarts it.

verdictd (the test build, verdictd-test-hooks) runs two queues in the lab's
firewall, without fail-open and without bypass. Traffic through queue 1
passes (exact count). Then `debug break 0` puts /dev/null in place of queue
0's socket descriptor: its worker's receives fail (ENOTSOCK) until it gives
up after its errors in a row, while the socket itself stays open, so the
kernel keeps queue 0 bound with nobody reading it. The daemon must notice:
log which queue failed and why, drain the other queue, and exit 1. After
the exit neither queue is bound (/proc/net/netfilter/nfnetlink_queue).
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
import opslab  # noqa: E402

BROKEN, HEALTHY = 0, 1
BROKEN_PORT, HEALTHY_PORT = 7401, 7402


class DeadWorkerTest(unittest.TestCase):
    def setUp(self):
        nslab.require_root_tools()
        self.lab = nslab.Lab(client_addresses=4)
        self.lab.setup()
        self.addCleanup(self.lab.cleanup)
        self.control = os.path.join(self.lab.tmpdir, "control.sock")
        self.lab.queue_rule(f"--queue-num {BROKEN}", match=f"-p udp --dport {BROKEN_PORT}")
        self.lab.queue_rule(f"--queue-num {HEALTHY}", match=f"-p udp --dport {HEALTHY_PORT}")

    def test_daemon_exits_1_naming_the_queue_when_a_worker_gives_up(self):
        binary = opslab.test_hooks_bin()
        with nslab.daemon_log_on_failure(self):
            self.daemon = self.lab.start_verdictd(
                "--queues", f"{BROKEN}:{HEALTHY}", "--no-fail-open",
                "--set", f'control.socket="{self.control}"', "--set", "metrics.enabled=false",
                binary=binary)
            daemon = self.daemon
            result = self.lab.udp_exchange(HEALTHY_PORT, 100)
            self.assertEqual(result["received"], 100)
            bound = self.lab.nfqueue_stats()
            self.assertIn(BROKEN, bound)
            self.assertIn(HEALTHY, bound)

            reply = opslab.control_command(self.lab, self.control, f"debug break {BROKEN}")
            self.assertTrue(reply.startswith(f"ok broke the socket of queue {BROKEN}"), reply)
            code = daemon.wait(timeout=60)
            log = daemon.log()
            self.assertEqual(code, 1, log)
            # Which queue, and why, when it happened and again at the exit.
            self.assertRegex(log, rf"the worker of queue {BROKEN}: receive failed: "
                                  r"Socket operation on non-socket; it gave up, verdictd stops")
            self.assertIn("stopping after a worker failed: draining the other queues", log)
            self.assertRegex(log, rf"stopped after a worker failed: queue {BROKEN}: receive failed")
            self.assertNotIn(f"queue {HEALTHY}: receive failed", log)
            self.assertNotIn("stopped cleanly", log)
            # The healthy queue was drained and summarised like any stop.
            self.assertEqual(daemon.counters()[HEALTHY]["packets"], 100)
            self.assertEqual(daemon.counters()[BROKEN]["packets"], 0)
            # Nothing left bound: the queue nobody read is gone with the process.
            stats = self.lab.nfqueue_stats()
            self.assertNotIn(BROKEN, stats)
            self.assertNotIn(HEALTHY, stats)

    def test_break_hook_refuses_a_queue_that_does_not_run(self):
        binary = opslab.test_hooks_bin()
        with nslab.daemon_log_on_failure(self):
            self.daemon = self.lab.start_verdictd(
                "--queues", f"{BROKEN}:{HEALTHY}",
                "--set", f'control.socket="{self.control}"', "--set", "metrics.enabled=false",
                binary=binary)
            reply = opslab.control_command(self.lab, self.control, "debug break 9")
            self.assertEqual(reply, "error: queue 9 is not running\n")
            reply = opslab.control_command(self.lab, self.control, "debug break x")
            self.assertEqual(reply, "error: usage: debug break QUEUE\n")
            self.assertEqual(self.daemon.stop(), 0)
            self.assertIn("stopped cleanly", self.daemon.log())
            self.assertIsNone(re.search(r"gave up", self.daemon.log()))


if __name__ == "__main__":
    unittest.main()
