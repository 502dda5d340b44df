"""verdictd under a stand-in for systemd: a real unix datagram socket named in
NOTIFY_SOCKET receives what verdictd's sd_notify() calls send.

  * READY=1 arrives only once the queues are bound (the kernel's queue table
    lists both when it arrives) and traffic then passes, exactly;
  * RELOADING=1 then READY=1 around a SIGHUP reload and a `ctl reload`;
  * STOPPING=1 at SIGTERM, then a clean exit;
  * with WATCHDOG_USEC and WATCHDOG_PID, WATCHDOG=1 pings come; they stop
    while a worker is stalled (the test build's `debug stall` control command
    pauses one worker while packets wait for it) and resume when it recovers;
    the stall is logged once and counted once in verdictd_worker_stalls_total;
  * WATCHDOG_PID naming another process: no pings.
"""

import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
import opslab  # noqa: E402

PORT = 5611


class SystemdNotifyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        nslab.require_root_tools()
        cls.lab = nslab.Lab(client_addresses=4)
        cls.lab.setup()

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def setUp(self):
        self.lab.flush_rules()
        self.notify = opslab.NotifySocket(self.lab.tmpdir)
        self.control = os.path.join(self.lab.tmpdir, f"control-{self._testMethodName}.sock")
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None and self.daemon.proc.poll() is None:
            self.daemon.stop()
        self.notify.close()
        os.unlink(self.notify.path)

    def start(self, *extra, env=None, prefix=(), binary=None):
        full_env = {"NOTIFY_SOCKET": self.notify.path}
        full_env.update(env or {})
        self.daemon = self.lab.start_verdictd(
            "--queues", "0:1", "--set", f'control.socket="{self.control}"', *extra,
            env=full_env, prefix=prefix, binary=binary, wait_ready=False)
        return self.daemon

    def test_ready_reload_stopping(self):
        self.lab.queue_rule("--queue-balance 0:1")
        tables = []
        # The kernel's table at the moment READY=1 arrives.
        self.notify.hooks.append(
            lambda m: tables.append(self.lab.nfqueue_stats()) if m.get("READY") == "1" else None)
        with nslab.daemon_log_on_failure(self):
            daemon = self.start()
            ready = self.notify.wait_for(lambda m: m.get("READY") == "1", "READY=1")
            self.assertEqual(len(tables), 1)
            self.assertEqual(sorted(tables[0]), [0, 1], f"kernel table at READY: {tables[0]}")
            for queue in (0, 1):
                self.assertEqual(tables[0][queue]["copy_mode"], 2)
            status = self.notify.snapshot()[ready]["STATUS"]
            self.assertEqual(status, "queues 0-1 bound, 2 workers, generation 1, 0 verdicts")
            # Nothing before READY claimed readiness or stopping.
            for message in self.notify.snapshot()[:ready]:
                self.assertNotIn("READY", message)

            got = self.lab.udp_exchange(PORT, 200)
            self.assertEqual(got["received"], 200)

            # SIGHUP: RELOADING=1, then READY=1 with generation 2.
            mark = len(self.notify.snapshot())
            daemon.proc.send_signal(signal.SIGHUP)
            reloading = self.notify.wait_for(lambda m: m.get("RELOADING") == "1", "RELOADING=1",
                                             start=mark)
            self.assertIn("MONOTONIC_USEC", self.notify.snapshot()[reloading])
            again = self.notify.wait_for(lambda m: m.get("READY") == "1", "READY=1 after SIGHUP",
                                         start=reloading + 1)
            self.assertEqual(self.notify.snapshot()[again]["STATUS"],
                             "queues 0-1 bound, 2 workers, generation 2, 200 verdicts")

            # ctl reload: the same pair, generation 3.
            mark = len(self.notify.snapshot())
            result = self.lab.ctl(self.control, "reload")
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            reloading = self.notify.wait_for(lambda m: m.get("RELOADING") == "1",
                                             "RELOADING=1 (ctl)", start=mark)
            again = self.notify.wait_for(lambda m: m.get("READY") == "1", "READY=1 after ctl reload",
                                         start=reloading + 1)
            self.assertIn("generation 3", self.notify.snapshot()[again]["STATUS"])

            # SIGTERM: STOPPING=1, exit 0; no watchdog was asked for, so no ping.
            mark = len(self.notify.snapshot())
            self.assertEqual(daemon.stop(), 0)
            self.notify.wait_for(lambda m: m.get("STOPPING") == "1", "STOPPING=1", start=mark)
            self.assertFalse(any("WATCHDOG" in m for m in self.notify.snapshot()))
            self.assertEqual(daemon.counters()[0]["packets"] + daemon.counters()[1]["packets"], 200)

    def test_watchdog_stops_while_a_worker_stalls(self):
        binary = opslab.test_hooks_bin()
        self.lab.queue_rule("--queue-num 0")
        # WATCHDOG_PID must be verdictd's own pid: sh execs into `ip netns
        # exec`, which execs verdictd, so $$ is that pid.
        prefix = ("sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"')
        with nslab.daemon_log_on_failure(self):
            daemon = self.start(env={"WATCHDOG_USEC": "400000"}, prefix=prefix, binary=binary)
            ready = self.notify.wait_for(lambda m: m.get("READY") == "1", "READY=1")
            first = self.notify.wait_for(lambda m: m.get("WATCHDOG") == "1", "a watchdog ping",
                                         start=ready)
            self.notify.wait_for(lambda m: m.get("WATCHDOG") == "1", "a second ping",
                                 start=first + 1)
            reply = opslab.control_command(self.lab, self.control, "debug stall 0 2500")
            self.assertTrue(reply.startswith("ok"), reply)
            receiver = self.lab.udp_receiver(PORT, expect=100, idle=5.0)
            self.lab.udp_send(PORT, 100, rate=100)
            stalled = self.notify.wait_for(lambda m: "queue 0 stalled" in m.get("STATUS", ""),
                                           "STATUS saying queue 0 stalled")
            recovered = self.notify.wait_for(
                lambda m: "STATUS" in m and "stalled" not in m["STATUS"], "STATUS after recovery",
                start=stalled + 1)
            after = self.notify.wait_for(lambda m: m.get("WATCHDOG") == "1",
                                         "a ping after recovery", start=recovered + 1)
            between = self.notify.snapshot()[stalled:recovered]
            self.assertEqual([m for m in between if "WATCHDOG" in m], [],
                             "watchdog pinged while a worker was stalled")
            self.assertGreater(after, recovered)
            # Fail-open queue, nothing lost: every packet waited and passed.
            self.assertEqual(receiver.result()["received"], 100)
            samples = opslab.scrape(self.lab)
            self.assertEqual(opslab.metric(samples, "verdictd_worker_stalls_total", queue=0), 1)
            self.assertEqual(opslab.metric(samples, "verdictd_worker_stalls_total", queue=1), 0)
            self.assertEqual(opslab.metric(samples, "verdictd_worker_stalled", queue=0), 0)
            self.assertEqual(daemon.stop(), 0)
            log = daemon.log()
            self.assertEqual(log.count("the worker of queue 0 is stalled"), 1, log)
            self.assertEqual(log.count("the worker of queue 0 makes progress again"), 1, log)
            self.assertIn("systemd watchdog: 400 ms; a worker counts as stalled after 200 ms", log)

    def test_no_ping_for_another_watchdog_pid(self):
        self.lab.queue_rule("--queue-num 0")
        with nslab.daemon_log_on_failure(self):
            daemon = self.start(env={"WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
            ready = self.notify.wait_for(lambda m: m.get("READY") == "1", "READY=1")
            # A reload round trip takes longer than several watchdog intervals.
            for _ in range(3):
                mark = len(self.notify.snapshot())
                daemon.proc.send_signal(signal.SIGHUP)
                self.notify.wait_for(lambda m: m.get("READY") == "1", "READY=1 after SIGHUP",
                                     start=mark)
            self.assertGreater(len(self.notify.snapshot()), ready + 3)
            self.assertFalse(any("WATCHDOG" in m for m in self.notify.snapshot()))
            self.assertNotIn("systemd watchdog", daemon.log())
            self.assertEqual(daemon.stop(), 0)


if __name__ == "__main__":
    unittest.main()
