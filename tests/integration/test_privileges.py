"""verdictd with least privilege, through the real kernel.

/proc/net/netfilter/nfnetlink_queue (the kernel's own loss counters) is
readable by root only (0440). verdictd opens it while still privileged and
re-reads it through that descriptor at every scrape:
  * started as root with [process] user = "nobody": it runs as uid 65534
    with CAP_NET_ADMIN only, and the kernel families are present and count
    the traffic exactly;
  * started directly as uid 65534 with CAP_NET_ADMIN ambient and the
    supplementary group root (what the shipped unit grants): the same;
  * started as uid 65534 with CAP_NET_ADMIN and CAP_DAC_READ_SEARCH ambient
    (the alternative): the same, and the second capability is gone once the
    table is open;
  * started as uid 65534 with only CAP_NET_ADMIN ambient: the table cannot be
    opened; traffic still passes, verdictd says so once in its log, and
    exports verdictd_kernel_stats_available 0 with no verdictd_kernel_* family.
"""

import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
import opslab  # noqa: E402

PORT = 5612
COUNT = 300
CAP_NET_ADMIN = 1 << 12


def setpriv(*caps, groups=None):
    spec = ",".join(f"+{cap}" for cap in caps)
    group_args = (f"--groups={groups}",) if groups is not None else ("--clear-groups",)
    return ("setpriv", "--reuid=65534", "--regid=65534", *group_args,
            f"--inh-caps={spec}", f"--ambient-caps={spec}")


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


class PrivilegesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        nslab.require_root_tools()
        if shutil.which("setpriv") is None:
            nslab.skip("needs setpriv (util-linux)")
        cls.lab = nslab.Lab(client_addresses=8)
        cls.lab.setup()

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def setUp(self):
        self.lab.flush_rules()
        self.lab.queue_rule("--queue-balance 0:1")
        self.daemon = None

    def run_case(self, *args, prefix=()):
        self.daemon = self.lab.start_verdictd("--queues", "0:1", "--set", "control.enabled=false",
                                              *args, prefix=prefix)
        status = proc_status(self.daemon.pid)
        self.assertEqual(status["Uid"], ["65534"] * 4, status["Uid"])
        self.assertEqual(status["Gid"], ["65534"] * 4, status["Gid"])
        # Only CAP_NET_ADMIN is left, whatever it started with.
        self.assertEqual(int(status["CapEff"][0], 16), CAP_NET_ADMIN)
        self.assertEqual(int(status["CapPrm"][0], 16), CAP_NET_ADMIN)
        before = opslab.scrape(self.lab)
        got = self.lab.udp_exchange(PORT, COUNT)
        self.assertEqual(got["received"], COUNT)
        after = opslab.scrape(self.lab)
        received = sum(opslab.metric(after, "verdictd_received_packets_total", queue=q) for q in (0, 1))
        self.assertEqual(received, COUNT)
        return before, after

    def assert_kernel_stats(self, before, after):
        self.assertEqual(opslab.metric(after, "verdictd_kernel_stats_available"), 1)
        for q in (0, 1):
            self.assertEqual(opslab.metric(before, "verdictd_kernel_queue_bound", queue=q), 1)
            self.assertEqual(opslab.metric(before, "verdictd_kernel_queue_last_packet_id", queue=q), 0)
            self.assertEqual(opslab.metric(after, "verdictd_kernel_dropped_packets_total", queue=q,
                                           reason="socket_full"), 0)
        moved = sum(opslab.metric(after, "verdictd_kernel_queue_last_packet_id", queue=q)
                    for q in (0, 1))
        self.assertEqual(moved, COUNT)
        self.assertNotIn("kernel queue metrics unavailable", self.daemon.log())

    def test_root_with_process_user(self):
        with nslab.daemon_log_on_failure(self):
            before, after = self.run_case("--set", 'process.user="nobody"')
            self.assert_kernel_stats(before, after)
            self.assertEqual(self.daemon.stop(), 0)

    def test_unprivileged_with_group_root(self):
        with nslab.daemon_log_on_failure(self):
            before, after = self.run_case(prefix=setpriv("net_admin", groups="0"))
            self.assertEqual(proc_status(self.daemon.pid)["Groups"], ["0"])
            self.assert_kernel_stats(before, after)
            self.assertEqual(self.daemon.stop(), 0)

    def test_unprivileged_with_dac_read_search(self):
        with nslab.daemon_log_on_failure(self):
            before, after = self.run_case(prefix=setpriv("net_admin", "dac_read_search"))
            self.assert_kernel_stats(before, after)
            self.assertEqual(self.daemon.stop(), 0)

    def test_unprivileged_net_admin_only(self):
        with nslab.daemon_log_on_failure(self):
            before, after = self.run_case(prefix=setpriv("net_admin"))
            for samples in (before, after):
                self.assertEqual(opslab.metric(samples, "verdictd_kernel_stats_available"), 0)
                for family in ("verdictd_kernel_queue_bound", "verdictd_kernel_dropped_packets_total",
                               "verdictd_kernel_queue_waiting_packets",
                               "verdictd_kernel_queue_last_packet_id", "verdictd_queue_info"):
                    self.assertFalse(opslab.has_family(samples, family), family)
            self.assertEqual(self.daemon.stop(), 0)
            log = self.daemon.log()
            self.assertEqual(log.count("kernel queue metrics unavailable"), 1, log)
            self.assertIn("cannot open /proc/net/netfilter/nfnetlink_queue (Permission denied)", log)
            self.assertIn("started as uid 65534 without the group root or CAP_DAC_READ_SEARCH", log)
            counters = self.daemon.counters()
            self.assertEqual(counters[0]["packets"] + counters[1]["packets"], COUNT)


if __name__ == "__main__":
    unittest.main()
