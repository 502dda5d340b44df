#!/usr/bin/env python3
"""Queues added and removed by a live reload, on the real kernel.

In the namespace lab (client -- firewall -- server, see nslab.py) the
firewall queues UDP port 5555 to queue 7, port 5556 to queue 8 and port 5557
to queue 9. verdictd starts with queue 7 only while the client sends a paced
stream through it for the whole test. Meanwhile the test reloads:

1. adding queue 8 (and changing the batching keys live): traffic to 5556
   arrives whole and the metrics count it under queue="8";
2. changing queue 7's copy range: refused, naming the queue and the key;
3. adding queue 9 while another process holds it: refused, nothing changes;
4. removing queue 8: its series leave /metrics, its summary is logged.

At the end the stream through queue 7 must have lost nothing: every datagram
sent arrived, verdictd received and accepted exactly those, the kernel dropped
none, and queue 7 stayed bound to the same netlink socket throughout.
"""
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

STEADY, ADDED, HELD = 7, 8, 9
PORTS = {STEADY: 5555, ADDED: 5556, HELD: 5557}
STREAM_PACKETS = 3000
STREAM_RATE = 500
ADDED_PACKETS = 300

_FETCH = r"""
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"""

_FREE_PORT = r"""
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
"""


def queue_block(first, copy_range=None):
    text = f"\n[[queues]]\nfirst = {first}\ncount = 1\ncpus = [0]\n"
    if copy_range is not None:
        text += f"copy_range = {copy_range}\n"
    return text


class ReloadQueuesTest(unittest.TestCase):
    def setUp(self):
        nslab.require_root_tools()
        self.lab = nslab.Lab(client_addresses=1)
        self.lab.setup()
        self.addCleanup(self.lab.cleanup)
        self.socket = os.path.join(self.lab.tmpdir, "control.sock")
        self.config = os.path.join(self.lab.tmpdir, "verdictd.toml")
        for queue, port in PORTS.items():
            self.lab.queue_rule(f"--queue-num {queue}", match=f"-p udp --dport {port}")
        self.metrics_port = int(self.lab.ns(self.lab.firewall, sys.executable, "-c",
                                            _FREE_PORT).stdout)

    # -- helpers --------------------------------------------------------------

    def write_config(self, queues, verdict_extra=""):
        nslab.replace_file(self.config,
                           f'[verdict]\ndefault = "accept"\n{verdict_extra}\n'
                           f'[metrics]\nlisten = "127.0.0.1:{self.metrics_port}"\n'
                           f'[control]\nsocket = "{self.socket}"\n' + "".join(queues))

    def status(self):
        return self.lab.ctl_status(self.socket)

    def reload(self):
        """`verdictd ctl reload`: (applied, reply)."""
        result = self.lab.ctl(self.socket, "reload")
        return result.returncode == 0, result.stdout + result.stderr

    def scrape(self):
        return self.lab.ns(self.lab.firewall, sys.executable, "-c", _FETCH,
                           f"http://127.0.0.1:{self.metrics_port}/metrics").stdout

    def received_metric(self, queue):
        m = re.search(rf'^verdictd_received_packets_total\{{queue="{queue}"\}} (\S+)$',
                      self.scrape(), re.M)
        return None if m is None else int(float(m.group(1)))

    def wait_for(self, predicate, what, timeout=10.0):
        nslab.wait_for(predicate, what, timeout)

    # -- the test -------------------------------------------------------------

    def test_queues_added_and_removed_live_leave_the_others_untouched(self):
        with nslab.daemon_log_on_failure(self):
            self._scenario()

    def _scenario(self):
        lab = self.lab
        self.write_config([queue_block(STEADY)])
        self.daemon = lab.start_verdictd("--config", self.config)
        self.addCleanup(lambda: self.daemon.stop(signal.SIGKILL)
                        if self.daemon.proc.poll() is None else None)
        self.assertEqual(self.status()["queues"], str(STEADY))
        portid = lab.nfqueue_stats()[STEADY]["portid"]

        # The steady stream runs through every reload below (about 6 s).
        stream_receiver = lab.udp_receiver(PORTS[STEADY], expect=STREAM_PACKETS, idle=2.0)
        stream = lab.udp_send(PORTS[STEADY], STREAM_PACKETS, rate=STREAM_RATE, background=True)
        self.wait_for(lambda: int(self.status()["packets"]) > 50, "the stream to start")

        # 1. Add queue 8, and change the batching keys live in the same reload.
        self.write_config([queue_block(STEADY), queue_block(ADDED)],
                          "batch_size = 32\nflush_interval_us = 500\n")
        applied, reply = self.reload()
        self.assertTrue(applied, reply)
        self.assertIn(f"adds queue {ADDED}", reply)
        self.assertIn("verdict.batch_size, verdict.flush_interval_us", reply)
        self.assertEqual(self.status()["queues"], f"{STEADY},{ADDED}")
        self.assertIn(ADDED, lab.nfqueue_stats())
        result = lab.udp_exchange(PORTS[ADDED], ADDED_PACKETS, rate=2000)
        self.assertEqual(result["received"], ADDED_PACKETS)
        self.wait_for(lambda: self.received_metric(ADDED) == ADDED_PACKETS,
                      f"the metrics to count {ADDED_PACKETS} packets on queue {ADDED}")

        # 2. A running queue's settings cannot change live: refused, named.
        failures = int(self.status()["reload_failures"])
        self.write_config([queue_block(STEADY, copy_range=128), queue_block(ADDED)])
        applied, reply = self.reload()
        self.assertFalse(applied, reply)
        self.assertIn(f"queue {STEADY}: copy_range 65535 -> 128", reply)
        self.assertEqual(int(self.status()["reload_failures"]), failures + 1)
        self.assertEqual(self.status()["queues"], f"{STEADY},{ADDED}")

        # 3. A queue another process holds: the bind fails, nothing changes.
        holder = lab.start_verdictd("--queues", str(HELD), "--set", "control.enabled=false",
                                    "--set", "metrics.enabled=false")
        held_portid = lab.nfqueue_stats()[HELD]["portid"]
        self.write_config([queue_block(STEADY), queue_block(ADDED), queue_block(HELD)])
        applied, reply = self.reload()
        self.assertFalse(applied, reply)
        self.assertIn(f"queue {HELD}", reply)
        self.assertIn("already bound by another process", reply)
        self.assertEqual(self.status()["queues"], f"{STEADY},{ADDED}")
        self.assertEqual(lab.nfqueue_stats()[HELD]["portid"], held_portid)
        self.assertEqual(holder.stop(), 0, holder.log())

        # 4. Remove queue 8: drained, unbound, gone from the metrics.
        self.write_config([queue_block(STEADY)])
        applied, reply = self.reload()
        self.assertTrue(applied, reply)
        self.assertIn(f"removes queue {ADDED}", reply)
        self.assertEqual(self.status()["queues"], str(STEADY))
        self.assertNotIn(ADDED, lab.nfqueue_stats())
        self.assertIsNone(self.received_metric(ADDED))
        self.assertRegex(self.daemon.log(),
                         rf"removed queue {ADDED}: packets {ADDED_PACKETS}, bytes \d+, "
                         rf"accept {ADDED_PACKETS}")

        # The steady queue: same socket throughout, nothing lost.
        sent = stream.result()["sent"]
        self.assertEqual(sent, STREAM_PACKETS)
        self.assertEqual(stream_receiver.result()["received"], STREAM_PACKETS)
        stats = lab.nfqueue_stats()[STEADY]
        self.assertEqual(stats["portid"], portid, "queue 7 was rebound during the reloads")
        self.assertEqual(stats["queue_dropped"], 0, stats)
        self.assertEqual(stats["user_dropped"], 0, stats)
        self.wait_for(lambda: self.received_metric(STEADY) == STREAM_PACKETS,
                      "the metrics to count the whole stream")

        self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
        summary = self.daemon.counters()[STEADY]
        self.assertEqual(summary["packets"], STREAM_PACKETS, summary)
        self.assertEqual(summary["accept"], STREAM_PACKETS, summary)


if __name__ == "__main__":
    nslab.require_root_tools()
    unittest.main()
