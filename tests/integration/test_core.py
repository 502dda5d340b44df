"""verdictd on the real kernel: client -> firewall (NFQUEUE + verdictd) -> server.

Every test counts exactly: what was sent, what arrived, what verdictd saw.
Needs root (skips with exit 77 otherwise). Runs in well under 90 seconds.
"""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402


class Core(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        nslab.require_root_tools()
        nslab.verdictd_bin()
        cls.lab = nslab.Lab(client_addresses=16)
        cls.lab.setup()

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def setUp(self):
        self.lab.flush_rules()

    def tearDown(self):
        self.lab.flush_rules()

    def stop_clean(self, daemon):
        code = daemon.stop()
        self.assertEqual(code, 0, daemon.log())
        return daemon.counters()

    def test_accept_delivers_every_packet(self):
        n = 2000
        self.lab.queue_rule("--queue-num 0", match="-p udp --dport 7001")
        daemon = self.lab.start_verdictd("--queues", "0:0", "--default-verdict", "accept")
        result = self.lab.udp_exchange(7001, n, rate=20000)
        counters = self.stop_clean(daemon)
        self.assertEqual(result["received"], n)
        self.assertEqual(counters[0]["packets"], n, daemon.log())
        self.assertEqual(counters[0]["accept"], n)
        self.assertLess(counters[0]["verdict_sends"], n, "verdicts were not batched")

    def test_drop_delivers_none(self):
        n = 500
        self.lab.queue_rule("--queue-num 0", match="-p udp --dport 7002")
        daemon = self.lab.start_verdictd("--queues", "0:0", "--default-verdict", "drop")
        receiver = self.lab.udp_receiver(7002, deadline=3.0)
        self.lab.udp_send(7002, n, rate=20000)
        result = receiver.result()
        counters = self.stop_clean(daemon)
        self.assertEqual(result["received"], 0)
        self.assertEqual(counters[0]["packets"], n, daemon.log())
        self.assertEqual(counters[0]["drop"], n)

    def test_two_queue_range_both_queues_carry_traffic(self):
        n = 1600  # 100 from each of 16 source addresses: the balance hashes addresses
        self.lab.queue_rule("--queue-balance 0:1", match="-p udp --dport 7003")
        daemon = self.lab.start_verdictd("--queues", "0:1")
        result = self.lab.udp_exchange(7003, n, rate=20000)
        counters = self.stop_clean(daemon)
        self.assertEqual(result["received"], n)
        self.assertGreater(counters[0]["packets"], 0, daemon.log())
        self.assertGreater(counters[1]["packets"], 0, daemon.log())
        self.assertEqual(counters[0]["packets"] + counters[1]["packets"], n)

    def test_fail_open_lets_packets_pass_a_stalled_worker(self):
        n, maxlen = 300, 8
        self.lab.queue_rule("--queue-num 0", match="-p udp --dport 7004")
        daemon = self.lab.start_verdictd("--queues", "0:0", "--queue-maxlen", str(maxlen),
                                         "--fail-open")
        receiver = self.lab.udp_receiver(7004, expect=n, linger=0.3, idle=10, deadline=30)
        os.kill(daemon.pid, signal.SIGSTOP)
        try:
            self.lab.udp_send(7004, n, rate=5000)
            # Wait for the event, not a time: the queue filled to its limit.
            nslab.wait_for(lambda: self.lab.nfqueue_stats()[0]["queue_total"] >= maxlen,
                           f"queue 0 to hold {maxlen} packets for the stalled worker")
            stats = self.lab.nfqueue_stats()[0]
            # The kernel holds exactly maxlen packets for the stalled worker and
            # lets the rest through instead of dropping them.
            self.assertEqual(stats["queue_total"], maxlen)
            self.assertEqual(stats["queue_dropped"], 0)
        finally:
            os.kill(daemon.pid, signal.SIGCONT)
        result = receiver.result()
        counters = self.stop_clean(daemon)
        self.assertEqual(result["received"], n)
        self.assertEqual(counters[0]["packets"], maxlen, daemon.log())

    def test_gso_tcp_transfer_passes_with_packets_larger_than_the_mtu(self):
        nbytes = 16 << 20
        self.lab.queue_rule("--queue-num 0", match="-p tcp --dport 7005")
        daemon = self.lab.start_verdictd("--queues", "0:0", "--gso")
        received = self.lab.tcp_transfer(7005, nbytes)
        counters = self.stop_clean(daemon)
        self.assertEqual(received, nbytes)
        self.assertGreater(counters[0]["gso_packets"], 0, daemon.log())
        self.assertGreater(counters[0]["max_packet_length"], self.lab.mtu, daemon.log())

    def test_sigterm_mid_stream_loses_no_packet(self):
        n, rate = 6000, 4000  # 1.5 s of traffic; SIGTERM once a third went through the queue
        self.lab.queue_rule("--queue-num 0 --queue-bypass", match="-p udp --dport 7006")
        daemon = self.lab.start_verdictd("--queues", "0:0")
        receiver = self.lab.udp_receiver(7006, expect=n, linger=0.3, idle=3, deadline=30)
        sender = self.lab.udp_send(7006, n, rate=rate, background=True)
        nslab.wait_for(lambda: self.lab.nfqueue_stats()[0]["id_sequence"] >= n // 3,
                       f"{n // 3} packets queued to verdictd")
        code = daemon.stop()
        sender.result()
        result = receiver.result()
        self.assertEqual(code, 0, daemon.log())
        counters = daemon.counters()
        self.assertEqual(result["received"], n, daemon.log())
        self.assertGreater(counters[0]["packets"], 0)
        self.assertLess(counters[0]["packets"], n, "stopped after the stream ended")

    def assert_one_error_line(self, log, *needles):
        errors = [l for l in log.splitlines() if " error: " in l]
        self.assertEqual(len(errors), 1, log)
        for needle in needles:
            self.assertIn(needle, errors[0])

    def test_without_cap_net_admin_exits_with_one_clear_line(self):
        daemon = self.lab.start_verdictd(
            "--queues", "9:9", wait_ready=False,
            prefix=("setpriv", "--inh-caps=-all", "--bounding-set=-net_admin"))
        code = daemon.wait()
        self.assertNotEqual(code, 0)
        self.assertEqual(code, 2)
        self.assert_one_error_line(daemon.log(), "CAP_NET_ADMIN")

    def test_as_nobody_exits_with_one_clear_line(self):
        daemon = self.lab.start_verdictd(
            "--queues", "9:9", wait_ready=False,
            prefix=("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                    "--inh-caps=-all"))
        self.assertEqual(daemon.wait(), 2)
        self.assert_one_error_line(daemon.log(), "CAP_NET_ADMIN")

    def test_queue_held_by_another_instance_is_a_clear_error(self):
        first = self.lab.start_verdictd("--queues", "5:5")
        try:
            second = self.lab.start_verdictd("--queues", "5:5", wait_ready=False)
            self.assertEqual(second.wait(), 2)
            self.assert_one_error_line(second.log(), "queue 5")
        finally:
            self.assertEqual(first.stop(), 0, first.log())


if __name__ == "__main__":
    unittest.main()
