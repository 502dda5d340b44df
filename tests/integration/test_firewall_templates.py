"""The firewall templates of deploy/firewall/ on the real kernel.

iptables.rules and ip6tables.rules are loaded into the firewall namespace with
their loader (verdictd-firewall, iptables-restore --noflush), verdictd serves
their queues, and traffic crosses them with exact counts: every datagram
queued once; a TCP flow whose later packets keep reaching the queue (no
ESTABLISHED shortcut in front of it); a flow the rules bypass after 5 packets
(bypass_via = "mark", the templates' CONNMARK save) that stops reaching it.
Loading twice replaces only verdictd's chains and adds each jump once; other
rules of the tables stay. Counted through the kernel's queue table
(/proc/net/netfilter/nfnetlink_queue: each queue's packet id sequence).

verdictd.nft: `nft -c -f` in a fresh namespace. On a kernel without nft queue
support (CONFIG_NFT_QUEUE off, see ENVIRONMENT.md) the kernel refuses exactly
the queue rule, with ENOENT; the rest of the file is then checked without it,
and loaded twice to show that it replaces only its own table."""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

if os.geteuid() != 0:
    nslab.skip("needs root (network namespaces, iptables, NFQUEUE)")

SOURCE = os.environ.get("VERDICTD_SOURCE_DIR",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIREWALL = os.path.join(SOURCE, "deploy", "firewall")
LOADER = os.path.join(FIREWALL, "verdictd-firewall")
QUEUES = (0, 1)
BYPASS_PORT = 5001
V6_CLIENT, V6_FIREWALL_C, V6_FIREWALL_S, V6_SERVER = ("fd00:201:1::10", "fd00:201:1::1",
                                                     "fd00:201:2::1", "fd00:201:2::2")

# A TCP transfer and a UDP exchange over either family, run in the namespaces.
_TCP_SERVER = r"""
import json, socket, sys
p = json.loads(sys.argv[1])
srv = socket.socket(socket.AF_INET6 if ":" in p["bind"] else socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((p["bind"], p["port"]))
srv.listen(1)
srv.settimeout(60)
print("READY", flush=True)
conn, _ = srv.accept()
conn.settimeout(60)
total = 0
while True:
    data = conn.recv(1 << 20)
    if not data:
        break
    total += len(data)
conn.close()
print(json.dumps({"bytes": total}), flush=True)
"""
_TCP_CLIENT = r"""
import json, socket, sys
p = json.loads(sys.argv[1])
c = socket.create_connection((p["dst"], p["port"]), timeout=60)
c.sendall(b"t" * p["bytes"])
c.shutdown(socket.SHUT_WR)
c.recv(1)
c.close()
"""
_UDP_SERVER = r"""
import json, socket, sys, time
p = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((p["bind"], p["port"]))
s.settimeout(5)
print("READY", flush=True)
n = 0
try:
    while n < p["expect"]:
        s.recv(2048)
        n += 1
    s.settimeout(0.5)   # anything beyond the expected count would show
    while True:
        s.recv(2048)
        n += 1
except socket.timeout:
    pass
print(json.dumps({"received": n}), flush=True)
"""
_UDP_CLIENT = r"""
import json, socket, sys, time
p = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for i in range(p["count"]):
    s.sendto(b"u" * 100, (p["dst"], p["port"]))
    time.sleep(0.001)
"""


def config_text(metrics_port):
    return f"""
[[queues]]
first = {QUEUES[0]}
count = {len(QUEUES)}

[metrics]
listen = "127.0.0.1:{metrics_port}"

[control]
enabled = false

[[rules]]
name = "bulk"
protocol = "tcp"
dst_ports = [{BYPASS_PORT}]
action = "bypass"
bypass_after_packets = 5
bypass_via = "mark"
bypass_mark = "0x10/0x10"
"""


class XtablesTemplates(unittest.TestCase):
    def setUp(self):
        for tool in ("iptables-restore", "ip6tables-restore", "ip6tables"):
            if shutil.which(tool) is None:
                nslab.skip_test(self, f"needs '{tool}'")
        self.lab = nslab.Lab(client_addresses=2)
        self.lab.setup()
        self.addCleanup(self.lab.cleanup)
        self.fw = self.lab.firewall
        self.add_ipv6()
        # Rules of other software in the same tables: loading the templates
        # must not flush them.
        for tool in ("iptables", "ip6tables"):
            self.lab.ns(self.fw, tool, "-A", "FORWARD", "-p", "udp", "--dport", "9", "-j", "ACCEPT")
            self.lab.ns(self.fw, tool, "-t", "mangle", "-A", "POSTROUTING", "-p", "udp",
                        "--dport", "9", "-j", "RETURN")
        self.load("iptables")
        self.load("ip6tables")
        config = os.path.join(self.lab.tmpdir, "verdictd.toml")
        with open(config, "w") as f:
            f.write(config_text(19900 + os.getpid() % 90))
        self.daemon = self.lab.start_verdictd("--config", config)

    def add_ipv6(self):
        lab = self.lab
        lab.ns(lab.client, "ip", "-6", "addr", "add", f"{V6_CLIENT}/64", "dev", "c0", "nodad")
        lab.ns(self.fw, "ip", "-6", "addr", "add", f"{V6_FIREWALL_C}/64", "dev", "f0", "nodad")
        lab.ns(self.fw, "ip", "-6", "addr", "add", f"{V6_FIREWALL_S}/64", "dev", "f1", "nodad")
        lab.ns(lab.server, "ip", "-6", "addr", "add", f"{V6_SERVER}/64", "dev", "s0", "nodad")
        lab.ns(lab.client, "ip", "-6", "route", "add", "default", "via", V6_FIREWALL_C)
        lab.ns(lab.server, "ip", "-6", "route", "add", "default", "via", V6_FIREWALL_S)
        lab.ns(self.fw, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")

    def load(self, family):
        env = dict(os.environ, VERDICTD_QUEUES=f"{QUEUES[0]}:{QUEUES[-1]}")
        result = subprocess.run(["ip", "netns", "exec", self.fw, "sh", LOADER, "load", family],
                                capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)

    def queued(self):
        """Packets the kernel has queued so far, over verdictd's queues."""
        stats = self.lab.nfqueue_stats()
        return sum(stats[q]["id_sequence"] for q in QUEUES if q in stats)

    def tcp(self, dst, bind, port, nbytes):
        server = self.lab.popen(self.lab.server, [sys.executable, "-c", _TCP_SERVER,
                                                  json.dumps({"bind": bind, "port": port})])
        if server.stdout.readline().strip() != "READY":
            raise AssertionError(f"TCP server did not start: {server.stderr.read()}")
        client = self.lab.popen(self.lab.client, [sys.executable, "-c", _TCP_CLIENT,
                                                  json.dumps({"dst": dst, "port": port,
                                                              "bytes": nbytes})])
        _, client_err = client.communicate(timeout=90)
        self.assertEqual(client.returncode, 0, f"TCP client to {dst}: {client_err}")
        out, err = server.communicate(timeout=90)
        return json.loads(out.splitlines()[-1])["bytes"]

    def save(self, tool, table):
        return self.lab.ns(self.fw, f"{tool}-save", "-t", table).stdout

    def test_loading_again_replaces_only_verdictds_chains(self):
        self.load("iptables")
        self.load("ip6tables")
        for tool in ("iptables", "ip6tables"):
            flt = self.save(tool, "filter")
            self.assertEqual(flt.count("-A FORWARD -j VERDICTD"), 1, flt)
            self.assertEqual(len(re.findall(r"^-A VERDICTD ", flt, re.M)), 2, flt)
            self.assertIn("-A FORWARD -p udp -m udp --dport 9 -j ACCEPT", flt)
            self.assertIn(f"--queue-balance {QUEUES[0]}:{QUEUES[-1]}", flt)
            self.assertNotIn("ESTABLISHED", flt)
            mangle = self.save(tool, "mangle")
            self.assertEqual(mangle.count("-A POSTROUTING -j VERDICTD-SAVE"), 1, mangle)
            self.assertEqual(len(re.findall(r"^-A VERDICTD-SAVE ", mangle, re.M)), 1, mangle)
            self.assertIn("-A POSTROUTING -p udp -m udp --dport 9 -j RETURN", mangle)

    def test_every_datagram_is_queued_once(self):
        before = self.queued()
        got = self.lab.udp_exchange(7002, 200, rate=1000)
        self.assertEqual(got["received"], 200)
        self.assertEqual(self.queued() - before, 200)

    def test_ipv6_datagrams_are_queued_once(self):
        before = self.queued()
        server = self.lab.popen(self.lab.server, [sys.executable, "-c", _UDP_SERVER,
                                                  json.dumps({"bind": "::", "port": 7006,
                                                              "expect": 100})])
        self.assertEqual(server.stdout.readline().strip(), "READY")
        self.lab.popen(self.lab.client, [sys.executable, "-c", _UDP_CLIENT,
                                         json.dumps({"dst": V6_SERVER, "port": 7006,
                                                     "count": 100})]).communicate(timeout=60)
        out, _ = server.communicate(timeout=60)
        self.assertEqual(json.loads(out.splitlines()[-1])["received"], 100)
        self.assertEqual(self.queued() - before, 100)

    def test_later_packets_of_a_flow_reach_the_queue(self):
        # 2 MiB cannot cross in fewer than 32 segments of 64 KiB (the largest
        # GSO packet) beside the handshake; with an ESTABLISHED accept in front
        # of the queue only the SYN would be queued.
        for dst, bind in ((self.lab.SERVER, "0.0.0.0"), (V6_SERVER, "::")):
            before = self.queued()
            nbytes = 2 << 20
            self.assertEqual(self.tcp(dst, bind, 6001, nbytes), nbytes)
            queued = self.queued() - before
            self.assertGreaterEqual(queued, 3 + nbytes // 65536,
                                    f"only {queued} packets of a {dst} flow reached the queue")

    def test_bypassed_flow_stops_reaching_the_queue(self):
        for dst, bind in ((self.lab.SERVER, "0.0.0.0"), (V6_SERVER, "::")):
            before = self.queued()
            nbytes = 8 << 20
            self.assertEqual(self.tcp(dst, bind, BYPASS_PORT, nbytes), nbytes)
            queued = self.queued() - before
            # 8 MiB is at least 128 packets of 64 KiB plus their ACKs; after the
            # 5th packet the connection is marked and skips the queue. What
            # reached it: the handshake, the first packets, their ACKs, and
            # segments already queued when the mark was set.
            self.assertGreaterEqual(queued, 5)
            self.assertLess(queued, 60, f"{queued} packets of the bypassed {dst} flow were queued")
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
        self.assertIn("bypass_marked 2", self.daemon.log())

    def test_unload_removes_only_verdictds_rules(self):
        for tool in ("iptables", "ip6tables"):
            result = subprocess.run(["ip", "netns", "exec", self.fw, "sh", LOADER, "unload", tool],
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(result.returncode, 0, result.stderr)
            flt, mangle = self.save(tool, "filter"), self.save(tool, "mangle")
            self.assertNotIn("VERDICTD", flt + mangle)
            self.assertIn("--dport 9 -j ACCEPT", flt)
            self.assertIn("--dport 9 -j RETURN", mangle)
        # Nothing is queued any more: traffic passes without verdictd.
        before = self.queued()
        self.assertEqual(self.lab.udp_exchange(7003, 50, rate=1000)["received"], 50)
        self.assertEqual(self.queued(), before)


class NftTemplate(unittest.TestCase):
    def setUp(self):
        if shutil.which("nft") is None:
            nslab.skip_test(self, "needs 'nft' (nftables)")
        self.ns = f"vd{os.getpid()}nft"
        nslab.run(["ip", "netns", "add", self.ns])
        self.addCleanup(nslab.run, ["ip", "netns", "del", self.ns], check=False)
        self.template = os.path.join(FIREWALL, "verdictd.nft")
        with open(self.template) as f:
            self.text = f.read()

    def nft(self, *args, stdin=None):
        return subprocess.run(["ip", "netns", "exec", self.ns, "nft", *args], input=stdin,
                              capture_output=True, text=True, timeout=30)

    def without_queue(self):
        lines = [l for l in self.text.splitlines(keepends=True) if not l.strip().startswith("queue ")]
        self.assertEqual(len(lines), len(self.text.splitlines()) - 1, "one queue statement")
        return "".join(lines)

    def test_checks_with_nft_c(self):
        full = self.nft("-c", "-f", self.template)
        if full.returncode != 0:
            # The kernel lacks the queue expression: it must refuse that rule
            # and nothing else.
            queue_line = next(i for i, l in enumerate(self.text.splitlines(), 1)
                              if l.strip().startswith("queue "))
            errors = [l for l in full.stderr.splitlines() if "Error:" in l]
            self.assertEqual(len(errors), 1, full.stderr)
            self.assertRegex(errors[0], rf"verdictd\.nft:{queue_line}:\d+-\d+: Error: Could not "
                                        r"process rule: No such file or directory")
            print(f"nft -c: this kernel has no nft queue support; line {queue_line} refused "
                  "as expected, the rest checked without it", flush=True)
        rest = self.nft("-c", "-f", "-", stdin=self.without_queue())
        self.assertEqual(rest.returncode, 0, rest.stderr)

    def test_loading_replaces_only_its_own_table(self):
        other = self.nft("-f", "-", stdin="table inet filter {\n chain forward {\n"
                         "  type filter hook forward priority filter; policy accept;\n"
                         "  udp dport 9 accept\n }\n}\n")
        self.assertEqual(other.returncode, 0, other.stderr)
        for _ in range(2):
            loaded = self.nft("-f", "-", stdin=self.without_queue())
            self.assertEqual(loaded.returncode, 0, loaded.stderr)
        ruleset = self.nft("list", "ruleset").stdout
        self.assertEqual(ruleset.count("table inet verdictd"), 1, ruleset)
        self.assertEqual(ruleset.count("ct mark & 0x00000010 == 0x00000010 accept"), 1, ruleset)
        self.assertIn("udp dport 9 accept", ruleset)
        rules = [l for l in self.text.splitlines() if not l.lstrip().startswith("#")]
        self.assertFalse([l for l in rules if "ct state" in l], "an established shortcut")


if __name__ == "__main__":
    unittest.main()
