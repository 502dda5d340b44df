"""What verdictd says about its running posture, checked on the real kernel.

  * per-queue gauges of what the kernel applied: copy mode and range read
    back from the kernel's queue table, the flags acknowledged at bind
    (including secctx) and the maximum length;
  * `verdictd ctl status`: one line per queue (cpu, flags, copy, maxlen,
    received, verdicts by kind, kernel drops, backlog, pending) next to the
    summed lines, with exact counts;
  * `verdictd ctl top`: a per-queue table (--once / --count for scripts; ANSI
    clear+home on a terminal), whose rows follow the traffic;
  * CPU mapping: with --queue-cpu-fanout a sender on CPU 1 feeds queue 1, and
    verdictd serves queue 1 on CPU 1; under `taskset -c 1` queue 0 cannot be
    served on CPU 0, which it says once, serving it on CPU 1.
"""

import os
import pty
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
import opslab  # noqa: E402

PORT = 5614
COUNT = 240


class PostureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        nslab.require_root_tools()
        cls.lab = nslab.Lab(client_addresses=8)
        cls.lab.setup()

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def setUp(self):
        self.lab.flush_rules()
        self.control = os.path.join(self.lab.tmpdir, f"control-{self._testMethodName}.sock")
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None and self.daemon.proc.poll() is None:
            self.daemon.stop()

    def start(self, *args, prefix=()):
        self.daemon = self.lab.start_verdictd("--set", f'control.socket="{self.control}"', *args,
                                              prefix=prefix)
        return self.daemon

    def test_gauges_status_and_top(self):
        self.lab.queue_rule("--queue-balance 0:1")
        with nslab.daemon_log_on_failure(self):
            self.start("--queues", "0:1", "--copy-range", "1500", "--queue-maxlen", "2048",
                       "--no-gso", "--uid-gid", "--secctx", "--cpus", "0,0")
            got = self.lab.udp_exchange(PORT, COUNT)
            self.assertEqual(got["received"], COUNT)
            samples = opslab.scrape(self.lab)
            received = {}
            for q in (0, 1):
                self.assertEqual(opslab.metric(samples, "verdictd_queue_info", queue=q,
                                               copy_mode="packet"), 1)
                self.assertEqual(opslab.metric(samples, "verdictd_queue_copy_range_bytes", queue=q), 1500)
                self.assertEqual(opslab.metric(samples, "verdictd_queue_max_length", queue=q), 2048)
                flags = {f: opslab.metric(samples, "verdictd_queue_flag", queue=q, flag=f)
                         for f in ("fail-open", "gso", "conntrack", "uid-gid", "secctx")}
                self.assertEqual(flags, {"fail-open": 1, "gso": 0, "conntrack": 0, "uid-gid": 1,
                                         "secctx": 1})
                received[q] = opslab.metric(samples, "verdictd_received_packets_total", queue=q)
            self.assertEqual(sum(received.values()), COUNT)
            self.assertGreater(received[0], 0)  # 8 sources hash onto both queues
            self.assertGreater(received[1], 0)

            status = self.lab.ctl(self.control, "status")
            self.assertEqual(status.returncode, 0, status.stderr)
            lines = status.stdout.splitlines()
            self.assertIn(f"packets {COUNT}", lines)  # the summed lines stay
            self.assertIn("workers 2", lines)
            for q in (0, 1):
                line = next(l for l in lines if l.startswith(f"queue {q} "))
                self.assertEqual(
                    line,
                    f"queue {q} cpu=0 flags=fail-open,uid-gid,secctx copy=packet/1500 maxlen=2048 "
                    f"received={int(received[q])} accept={int(received[q])} drop=0 repeat=0 queue=0 "
                    f"stop=0 drops=0/0 backlog=0 pending=0 stalled=0")

            # Not a terminal: plain frames, one per --count.
            top = self.lab.ns(self.lab.firewall, nslab.verdictd_bin(), "ctl", "--socket",
                              self.control, "top", "--count", "2", "--interval", "0.1")
            self.assertEqual(top.returncode, 0, top.stderr)
            self.assertNotIn("\x1b[", top.stdout)
            frames = [f for f in top.stdout.split("\n\n") if f.strip()]
            self.assertEqual(len(frames), 2, top.stdout)
            for frame in frames:
                rows = frame.splitlines()
                self.assertEqual(rows[0], "verdictd top: 2 queue(s), interval 0.1 s")
                self.assertEqual(rows[1].split(), ["QUEUE", "PKT/S", "VERDICT/S", "DROPS", "DROP/S",
                                                   "PENDING", "BACKLOG", "LAT_P50", "LAT_P99"])
                # No traffic now: zero rates, nothing pending, no new latencies.
                for q, row in zip((0, 1), rows[2:]):
                    self.assertEqual(row.split(), [str(q), "0", "0", "0", "0", "0", "0", "-", "-"])

            # With traffic during the interval the rows move.
            sender = self.lab.udp_send(PORT, 400, rate=400, background=True)
            top = self.lab.ns(self.lab.firewall, nslab.verdictd_bin(), "ctl", "--socket",
                              self.control, "top", "--once", "--interval", "0.5")
            sender.result()
            rows = top.stdout.splitlines()[2:4]
            self.assertGreater(sum(float(r.split()[1]) for r in rows), 0, top.stdout)
            self.assertTrue(any(r.split()[7].startswith("<=") for r in rows), top.stdout)

            # On a terminal each frame clears the screen and homes the cursor.
            master, slave = pty.openpty()
            proc = subprocess.run(["ip", "netns", "exec", self.lab.firewall, nslab.verdictd_bin(),
                                   "ctl", "--socket", self.control, "top", "--once", "--interval",
                                   "0.1"], stdout=slave, stderr=subprocess.PIPE, timeout=30)
            os.close(slave)
            output = os.read(master, 65536).decode()
            os.close(master)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertTrue(output.startswith("\x1b[H\x1b[2J"), repr(output[:20]))
            self.assertEqual(self.daemon.stop(), 0)

    def test_cpu_mapping_follows_fanout(self):
        if os.cpu_count() < 2 or shutil.which("taskset") is None:
            nslab.skip("needs 2 CPUs and taskset")
        self.lab.queue_rule("--queue-balance 0:1 --queue-cpu-fanout")
        with nslab.daemon_log_on_failure(self):
            self.start("--queues", "0:1")
            samples = opslab.scrape(self.lab)
            self.assertEqual(opslab.metric(samples, "verdictd_worker_cpu", queue=0), 0)
            self.assertEqual(opslab.metric(samples, "verdictd_worker_cpu", queue=1), 1)
            # A sender on CPU 1 queues its packets to queue 1 (CPU 1 % 2).
            code = ("import socket\n"
                    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                    f"[s.sendto(b'c'*50,('{self.lab.SERVER}',{PORT})) for _ in range(100)]\n")
            receiver = self.lab.udp_receiver(PORT, expect=100)
            self.lab.ns(self.lab.client, "taskset", "-c", "1", sys.executable, "-c", code)
            self.assertEqual(receiver.result()["received"], 100)
            self.assertEqual(self.daemon.stop(), 0)
            counters = self.daemon.counters()
            self.assertEqual(counters[1]["packets"], 100)
            self.assertEqual(counters[0]["packets"], 0)
            self.assertNotIn("CPU mapping", self.daemon.log())

    def test_cpu_mapping_under_restricted_affinity(self):
        if os.cpu_count() < 2 or shutil.which("taskset") is None:
            nslab.skip("needs 2 CPUs and taskset")
        self.lab.queue_rule("--queue-balance 0:1 --queue-cpu-fanout")
        with nslab.daemon_log_on_failure(self):
            self.start("--queues", "0:1", prefix=("taskset", "-c", "1"))
            samples = opslab.scrape(self.lab)
            self.assertEqual(opslab.metric(samples, "verdictd_worker_cpu", queue=0), 1)
            self.assertEqual(opslab.metric(samples, "verdictd_worker_cpu", queue=1), 1)
            got = self.lab.udp_exchange(PORT, 100)
            self.assertEqual(got["received"], 100)
            self.assertEqual(self.daemon.stop(), 0)
            log = self.daemon.log()
            warnings = re.findall(r"CPU mapping: .*", log)
            self.assertEqual(len(warnings), 1, log)
            self.assertIn("queues[0] (queues 0..1): --queue-cpu-fanout sends the packets of CPU c to "
                          "queue 0 + c % 2, but this process may run only on CPU(s) 1: queue 0 (fed "
                          "by CPU 0) runs on CPU 1", warnings[0])
            self.assertNotIn("queue 1 (fed", warnings[0])
            self.assertIn("queue 0: cpu 1,", log)
            self.assertIn("queue 1: cpu 1,", log)


if __name__ == "__main__":
    unittest.main()
