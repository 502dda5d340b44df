"""A connmark bypass on a kernel without nf_conntrack_netlink (this one: the
kernel ignores a verdict's connmark).

The rule asks for bypass_via = "connmark"; the bind probe finds no
nf_conntrack_netlink, so verdictd bypasses through the packet mark instead,
says so once (naming the rule and the CONNMARK --save-mark rule), and the
metrics say what happened. The firewall runs the mark recipe of docs/rules.md,
so the flow really leaves the queue: of one UDP flow (fixed source port),
exactly the first 5 packets reach the queue (the kernel's packet id
sequence), the other 45 skip it, and all 50 arrive.
"""

import json
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
import opslab  # noqa: E402

QUEUE = 4
PORT = 5613
SOURCE_PORT = 41713
MARK = "0x20/0x20"

# Sends `count` datagrams from one fixed source address and port: every run
# continues the same conntrack flow.
_FLOW_SENDER = r"""
import json, socket, sys
p = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((p["src"], p["sport"]))
for i in range(p["count"]):
    s.sendto(b"f" * 64, (p["dst"], p["port"]))
print(json.dumps({"sent": p["count"]}), flush=True)
"""


class ConntrackFallbackTest(unittest.TestCase):
    def setUp(self):
        self.lab = nslab.Lab(client_addresses=1)
        self.lab.setup()
        self.addCleanup(self.lab.cleanup)
        config = os.path.join(self.lab.tmpdir, "verdictd.toml")
        with open(config, "w") as f:
            f.write(f"""
[[queues]]
first = {QUEUE}
count = 1

[control]
enabled = false

[[rules]]
name = "long-udp"
protocol = "udp"
dst_ports = [{PORT}]
action = "bypass"
bypass_after_packets = 5
bypass_mark = "{MARK}"
""")
        fw = self.lab.firewall
        self.lab.ns(fw, "iptables", "-A", "FORWARD", "-m", "connmark", "--mark", MARK, "-j", "ACCEPT")
        self.lab.queue_rule(f"--queue-num {QUEUE}", match="-p udp")
        self.lab.ns(fw, "iptables", "-t", "mangle", "-A", "POSTROUTING", "-m", "mark", "--mark",
                    MARK, "-j", "CONNMARK", "--save-mark", "--mask", "0x20")
        self.daemon = self.lab.start_verdictd("--config", config)

    def send_flow(self, count):
        params = {"src": self.lab.client_addresses[0], "sport": SOURCE_PORT, "dst": self.lab.SERVER,
                  "port": PORT, "count": count}
        proc = self.lab.popen(self.lab.client, [sys.executable, "-c", _FLOW_SENDER, json.dumps(params)])
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)

    def test_connmark_bypass_falls_back_to_the_mark(self):
        with nslab.daemon_log_on_failure(self):
            queued = lambda: self.lab.nfqueue_stats()[QUEUE]["id_sequence"]  # noqa: E731
            self.assertEqual(queued(), 0)
            # The first five one at a time, each delivered before the next is
            # sent: packets sent back to back before the first is confirmed
            # would each get a conntrack entry of their own, and a mark saved
            # on a duplicate entry is lost when it clashes with the first at
            # confirmation. The fifth carries the mark through the save rule;
            # then the connection holds it for sure.
            for _ in range(5):
                receiver = self.lab.udp_receiver(PORT, expect=1, idle=5.0)
                self.send_flow(1)
                self.assertEqual(receiver.result()["received"], 1)
            receiver = self.lab.udp_receiver(PORT, expect=45, idle=5.0)
            self.send_flow(45)
            self.assertEqual(receiver.result()["received"], 45)
            self.assertEqual(queued(), 5, "packets after the bypass still reached the queue")

            samples = opslab.scrape(self.lab)
            self.assertEqual(opslab.metric(samples, "verdictd_conntrack_netlink_available"), 0)
            self.assertEqual(opslab.metric(samples, "verdictd_connmark_bypass_fallback_rules"), 1)
            self.assertEqual(opslab.metric(samples, "verdictd_rules_events_total",
                                           event="bypass_via_mark"), 1)
            self.assertEqual(opslab.metric(samples, "verdictd_rules_events_total",
                                           event="bypass_via_connmark"), 0)
            self.assertEqual(opslab.metric(samples, "verdictd_connmark_stripped_total", queue=QUEUE), 0)
            self.assertEqual(opslab.metric(samples, "verdictd_received_packets_total", queue=QUEUE), 5)

            # A reload keeps the fallback and does not repeat the warning.
            self.daemon.proc.send_signal(signal.SIGHUP)
            nslab.wait_for(lambda: "reload (SIGHUP): generation 2" in self.daemon.log(), "the reload")
            samples = opslab.scrape(self.lab)
            self.assertEqual(opslab.metric(samples, "verdictd_connmark_bypass_fallback_rules"), 1)
            self.assertEqual(self.daemon.stop(), 0)
            log = self.daemon.log()
            warnings = re.findall(r"rule\(s\) long-udp: bypass_via = \"connmark\" needs "
                                  r"nf_conntrack_netlink", log)
            self.assertEqual(len(warnings), 1, log)
            self.assertIn("iptables -t mangle -A POSTROUTING -m mark --mark 0x20/0x20 -j CONNMARK "
                          "--save-mark --mask 0x20", log)


if __name__ == "__main__":
    unittest.main()
