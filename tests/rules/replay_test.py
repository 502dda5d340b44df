"""Offline replay: a pcap made here with scapy, a policy, and the expected
verdict and rule of every packet written down."""
import os
import subprocess
import sys
import tempfile
import unittest

try:
    from scapy.all import ARP, Ether, IP, IPv6, TCP, UDP, Raw, wrpcap
except ImportError:  # pragma: no cover
    print("skipping: python3-scapy is not installed")
    sys.exit(77)

REPLAY = os.environ.get("RULES_REPLAY_BIN", "rules_replay")

CONFIG = """
[verdict]
default = "accept"
unparseable = "drop"

[[rules]]
name = "drop-telnet"
protocol = "tcp"
dst_ports = [23]
action = "drop"

[[rules]]
name = "v6-dns"
family = "ipv6"
protocol = "udp"
dst_ports = [53]
action = "queue"
queue = 5

[[rules]]
name = "evil"
protocol = "tcp"
dst_ports = [80]
content = [{ literal = "evil", nocase = true }]
action = "drop"

[[rules]]
name = "limit"
src = ["@limited"]
action = "rate_limit"
rate = 1
burst = 2
over_limit = "drop"

[[rules]]
name = "bulk"
protocol = "tcp"
dst_ports = [5001]
action = "bypass"
bypass_after_packets = 3
bypass_via = "mark"
bypass_mark = "0x10/0x10"

[[rules]]
name = "frag-host"
src = ["10.7.0.1/32"]
action = "repeat"

[sets.limited]
prefixes = ["10.9.0.0/16", "2001:db8:9::/48"]
"""

E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def packets():
    """(packet, time, expected verdict, expected rule) in capture order."""
    t = 1_700_000_000.0
    out = []

    def add(pkt, verdict, rule, dt=0.001):
        nonlocal t
        t += dt
        out.append((pkt, t, verdict, rule))

    add(E / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=23), "drop", "drop-telnet")
    add(E / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=22), "accept", "-")
    add(E / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5000, dport=53), "queue:5", "v6-dns")
    add(E / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5000, dport=53), "accept", "-")
    add(E / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40001, dport=80, flags="PA") / Raw(b"GET /EvIl HTTP/1.1\r\n"),
        "drop", "evil")
    add(E / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40001, dport=80, flags="PA") / Raw(b"GET / HTTP/1.1\r\n"),
        "accept", "-")
    # Rate limit: burst 2, then 1 per second, per source address.
    for verdict in ("accept", "accept", "drop", "drop"):
        add(E / IP(src="10.9.1.1", dst="10.0.0.2") / UDP(sport=1, dport=9), verdict, "limit")
    add(E / IP(src="10.9.1.2", dst="10.0.0.2") / UDP(sport=1, dport=9), "accept", "limit")
    add(E / IP(src="10.9.1.1", dst="10.0.0.2") / UDP(sport=1, dport=9), "accept", "limit", dt=1.0)
    add(E / IPv6(src="2001:db8:9::1", dst="2001:db8::2") / UDP(sport=1, dport=9), "accept", "limit")
    # Bypass after 3 packets: the third and later carry the mark.
    for verdict in ("accept", "accept", "accept+mark=0x10", "accept+mark=0x10"):
        add(E / IP(src="10.0.0.1", dst="10.0.0.3") / TCP(sport=41000, dport=5001, flags="A"), verdict, "bulk")
    # A later fragment has no TCP header: only the address rule can match it.
    add(E / IP(src="10.7.0.1", dst="10.0.0.2", proto=6, frag=100) / Raw(b"x" * 40), "repeat", "frag-host")
    add(E / IP(src="10.7.0.2", dst="10.0.0.2", proto=6, frag=100) / Raw(b"x" * 40), "accept", "-")
    # Truncated: the IP header says TCP but the segment is cut short.
    add(E / IP(src="10.0.0.1", dst="10.0.0.2", proto=6) / Raw(b"\x00" * 10), "drop", "-")
    add(E / ARP(), None, None)
    return out


class ReplayTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.config = os.path.join(self.dir.name, "verdictd.toml")
        with open(self.config, "w") as f:
            f.write(CONFIG)

    def tearDown(self):
        self.dir.cleanup()

    def replay(self, pcap, *extra):
        return subprocess.run([REPLAY, "--config", self.config, *extra, pcap],
                              capture_output=True, text=True, timeout=60)

    def test_every_packet_gets_the_expected_verdict_and_rule(self):
        cases = packets()
        pkts = []
        for pkt, t, _, _ in cases:
            pkt.time = t
            pkts.append(pkt)
        pcap = os.path.join(self.dir.name, "capture.pcap")
        wrpcap(pcap, pkts)
        result = self.replay(pcap)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        for index, (_, _, verdict, rule) in enumerate(cases, start=1):
            line = lines[index - 1]
            fields = line.split()
            self.assertEqual(fields[0], str(index), line)
            if verdict is None:
                self.assertIn("skipped (not IP)", line)
                continue
            self.assertEqual(fields[1], verdict, line)
            self.assertEqual(fields[2], "rule=" + rule, line)
        summary = "\n".join(lines[len(cases):])
        self.assertIn(f"summary: {len(cases)} packets, 1 skipped (not IP)", summary)
        self.assertIn("  rule limit: 7 packets", summary)
        self.assertIn("  rule bulk: 4 packets", summary)
        self.assertIn("  decided by unparseable: 1", summary)
        self.assertIn("  decided by no-match: 4", summary)

    def test_compile_errors_name_the_file_line_and_rule(self):
        with open(self.config, "a") as f:
            f.write('\n[[rules]]\nname = "broken"\ncontent = [{ regex = "(" }]\naction = "drop"\n')
        pcap = os.path.join(self.dir.name, "empty.pcap")
        wrpcap(pcap, [E / IP() / UDP()])
        result = self.replay(pcap)
        self.assertEqual(result.returncode, 2)
        self.assertIn(self.config + ":", result.stderr)
        self.assertIn("rules (broken).content: bad regex '('", result.stderr)

    def write_capture(self, count):
        pcap = os.path.join(self.dir.name, "capture.pcap")
        wrpcap(pcap, [E / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000 + i, dport=23)
                      for i in range(count)])
        with open(pcap, "rb") as f:
            return pcap, f.read()

    def test_truncated_capture_gives_every_verdict_before_the_damage(self):
        # 5 records of 16 + 54 bytes after the 24-byte file header; cut the
        # last one in its data.
        pcap, data = self.write_capture(5)
        record = 16 + 54
        self.assertEqual(len(data), 24 + 5 * record)
        with open(pcap, "wb") as f:
            f.write(data[:-10])
        result = self.replay(pcap)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual([l.split()[:2] for l in lines[:4]], [[str(i), "drop"] for i in range(1, 5)])
        self.assertIn("summary: 4 packets", result.stdout)
        self.assertIn("  rule drop-telnet: 4 packets", result.stdout)
        self.assertIn(f"damaged at record 5 (byte offset {24 + 4 * record})", result.stderr)
        self.assertIn("truncated", result.stderr)

    def test_corrupt_record_length_stops_with_its_offset(self):
        pcap, data = self.write_capture(3)
        record = 16 + 54
        corrupt = bytearray(data)
        # The second record claims 1 GiB captured.
        offset = 24 + record
        corrupt[offset + 8:offset + 12] = (1 << 30).to_bytes(4, "little")
        with open(pcap, "wb") as f:
            f.write(corrupt)
        result = self.replay(pcap)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertTrue(result.stdout.startswith("1 drop"), result.stdout)
        self.assertIn("summary: 1 packets", result.stdout)
        self.assertIn(f"damaged at record 2 (byte offset {offset})", result.stderr)

    def test_damaged_file_header_is_one_clear_error(self):
        pcap, data = self.write_capture(1)
        with open(pcap, "wb") as f:
            f.write(b"\x00" * 24 + data[24:])
        result = self.replay(pcap)
        self.assertEqual(result.returncode, 2)
        self.assertIn("cannot read the capture", result.stderr)

    def test_missing_capture_is_one_clear_error(self):
        result = self.replay(os.path.join(self.dir.name, "nosuch.pcap"))
        self.assertEqual(result.returncode, 2)
        self.assertIn("cannot read the capture", result.stderr)


if __name__ == "__main__":
    unittest.main()
