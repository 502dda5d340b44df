"""Extensions on the real kernel: the chain selected by iptables MARK rules,
rewritten packets checked by real sockets (the kernel delivers only packets
whose checksums are right) for IPv4 and IPv6, UDP and TCP, asynchronous
verdicts out of order and across SIGTERM, live add/start/stop/group/del under
steady traffic, and bad extensions that leave the service running. Counts are
exact: what the server received, what verdictd counted, what the kernel's
queue table says."""
import json
import os
import shutil
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

if os.geteuid() != 0:
    nslab.skip("needs root (network namespaces, iptables, NFQUEUE, root-owned extension directory)")

QUEUE = 11
BUILD = os.environ.get("VERDICTD_BUILD_DIR", "build")
EXAMPLES = os.path.join(BUILD, "extensions")
FIXTURES = os.path.join(BUILD, "tests", "extensions", "fixtures")

# A receiver that records the payloads (UDP datagrams or the whole TCP
# stream) on IPv4 or IPv6.
_COLLECTOR = r"""
import json, socket, sys, time
p = json.loads(sys.argv[1])
fam = socket.AF_INET6 if p["v6"] else socket.AF_INET
kind = socket.SOCK_STREAM if p["tcp"] else socket.SOCK_DGRAM
s = socket.socket(fam, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::" if p["v6"] else "0.0.0.0", p["port"]))
if p["tcp"]:
    s.listen(1)
print("READY", flush=True)
s.settimeout(p["deadline"])
got = []
try:
    if p["tcp"]:
        c, _ = s.accept()
        c.settimeout(p["deadline"])
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        got.append(data.decode("latin-1"))
    else:
        while len(got) < p["expect"]:
            data, _ = s.recvfrom(65535)
            got.append(data.decode("latin-1"))
except socket.timeout:
    pass
print(json.dumps({"payloads": got}), flush=True)
"""

_SEND = r"""
import json, socket, sys, time
p = json.loads(sys.argv[1])
fam = socket.AF_INET6 if p["v6"] else socket.AF_INET
if p["tcp"]:
    c = socket.create_connection((p["dst"], p["port"]), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for m in p["messages"]:
        c.sendall(m.encode("latin-1"))
        time.sleep(0.05)  # one segment each (no coalescing into GSO)
    c.close()
else:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    for m in p["messages"]:
        s.sendto(m.encode("latin-1"), (p["dst"], p["port"]))
        time.sleep(0.002)
print(json.dumps({"sent": len(p["messages"])}), flush=True)
"""


class Extensions(unittest.TestCase):
    def setUp(self):
        self.lab = nslab.Lab(client_addresses=2)
        self.lab.setup()
        self.addCleanup(self.lab.cleanup)
        self.daemon = None
        self.extdir = os.path.join(self.lab.tmpdir, "ext")
        os.mkdir(self.extdir)
        os.chmod(self.extdir, 0o755)
        for name in ("template", "rewrite", "flowcount", "slowlookup"):
            self.install(os.path.join(EXAMPLES, name + ".so"))
        for name in ("probe_a", "probe_b", "bad_abi", "no_entry", "init_fails"):
            self.install(os.path.join(FIXTURES, name + ".so"))
        self.socket = os.path.join(self.lab.tmpdir, "control.sock")
        self.metrics_port = 19900 + os.getpid() % 90

    def install(self, path):
        if not os.path.exists(path):
            nslab.skip_test(self, f"{path} not built")
        target = os.path.join(self.extdir, os.path.basename(path))
        shutil.copyfile(path, target)
        os.chmod(target, 0o644)

    def start(self, chain, host="", rules=""):
        config = os.path.join(self.lab.tmpdir, "verdictd.toml")
        with open(config, "w") as f:
            f.write(f"""
[[queues]]
first = {QUEUE}
count = 1

[metrics]
listen = "127.0.0.1:{self.metrics_port}"

[control]
socket = "{self.socket}"

[extension_host]
directory = "{self.extdir}"
{host}
{chain}
{rules}
""")
        self.daemon = self.lab.start_verdictd("--config", config)
        return self.daemon

    def ext(self, *args):
        result = self.lab.ns(self.lab.firewall, nslab.verdictd_bin(), "ctl", "--socket",
                             self.socket, "ext", *args, check=False)
        return result.returncode, result.stdout + result.stderr

    def ext_ok(self, *args):
        code, text = self.ext(*args)
        self.assertEqual(code, 0, text)
        self.assertTrue(text.startswith("ok"), text)
        return text

    def stop_counters(self):
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
        return self.daemon.counters()[QUEUE]

    def scrape(self):
        return self.lab.ns(self.lab.firewall, sys.executable, "-c",
                           "import urllib.request,sys;sys.stdout.write(urllib.request.urlopen("
                           f"'http://127.0.0.1:{self.metrics_port}/metrics',timeout=5).read().decode())",
                           check=False).stdout

    def test_group_masks_follow_iptables_marks(self):
        fw = self.lab.firewall
        for port, mark in ((7101, 1), (7102, 2)):
            self.lab.ns(fw, "iptables", "-t", "mangle", "-A", "PREROUTING", "-p", "udp", "--dport",
                        str(port), "-j", "MARK", "--set-mark", str(mark))
        self.lab.queue_rule(f"--queue-num {QUEUE}")
        self.start("""
[[extensions]]
name = "template"
[[extensions]]
name = "probe_a"
parameters = "drop"
group = 1
[[extensions]]
name = "flowcount"
group = 2
""")
        with nslab.daemon_log_on_failure(self):
            src = [self.lab.client_addresses[0]]
            self.assertEqual(self.lab.udp_exchange(7101, 50, rate=500, sources=src)["received"], 0)
            self.assertEqual(self.lab.udp_exchange(7102, 30, rate=500, sources=src)["received"], 30)
            self.assertEqual(self.lab.udp_exchange(7103, 20, rate=500, sources=src)["received"], 20)
            self.assertIn("packets 100", self.ext_ok("info", "template"))
            self.assertIn("calls 50", self.ext_ok("info", "probe_a"))
            self.assertIn("flows 1 packets 30", self.ext_ok("info", "flowcount"))
            listing = self.ext_ok("list")
            self.assertIn("probe_a 0.1.0 started group=0x1 calls=50", listing)
            self.assertIn("flowcount 1.0.0 started group=0x2 calls=30", listing)
            metrics = self.scrape()
            if metrics:
                self.assertIn('verdictd_extension_calls_total{extension="template"} 100', metrics)
                self.assertIn('verdictd_extension_results_total{extension="probe_a",result="drop"} 50',
                              metrics)
            counters = self.stop_counters()
        self.assertEqual(counters["packets"], 100)
        self.assertEqual(counters["drop"], 50)
        self.assertEqual(counters["accept"], 50)

    def test_an_extension_written_in_rust_drops_its_port_on_ipv4_and_ipv6(self):
        # examples/portblock, built by rustc against verdictd.rs (no cargo).
        self.install(os.path.join(EXAMPLES, "portblock.so"))
        self.setup_ipv6()
        self.queue_forward_both("-p", "udp")
        self.start("""
[[extensions]]
name = "portblock"
parameters = "port=7201"
[[extensions]]
name = "template"
""")
        with nslab.daemon_log_on_failure(self):
            help_text = self.ext_ok("help", "portblock")
            self.assertIn("port=N", help_text)
            self.assertIn("drop UDP datagrams to this destination port", help_text)
            src = [self.lab.client_addresses[0]]
            self.assertEqual(self.lab.udp_exchange(7201, 40, rate=500, sources=src)["received"], 0)
            self.assertEqual(self.lab.udp_exchange(7202, 25, rate=500, sources=src)["received"], 25)
            # IPv6: the receiver gives up 2 s after the last datagram it got.
            self.assertEqual(self.exchange(7201, [f"v6 {i}" for i in range(15)], True, False,
                                           deadline=2), [])
            passed = [f"v6 {i}" for i in range(10)]
            self.assertEqual(self.exchange(7203, passed, True, False), passed)
            self.assertIn("port 7201 dropped 55 passed 35", self.ext_ok("info", "portblock"))
            # Only what portblock passed on reached the template.
            self.assertIn("packets 35", self.ext_ok("info", "template"))
            listing = self.ext_ok("list")
            self.assertIn("portblock 1.0.0 started group=0x0 calls=90", listing)
            metrics = self.scrape()
            self.assertIn('verdictd_extension_counter_total{extension="portblock",counter="dropped"} 55',
                          metrics)
            self.assertIn('verdictd_extension_counter_total{extension="portblock",counter="passed"} 35',
                          metrics)
            # Its parameter table is the host's to check: a port out of range
            # is refused with the table's words, and the service runs on.
            self.ext_ok("del", "portblock")
            code, text = self.ext("add", "portblock", "port=70000")
            self.assertNotEqual(code, 0, text)
            self.assertIn('parameter "port": expected unsigned integer in 0..65535', text)
            self.assertNotIn("portblock", self.ext_ok("list"))
            counters = self.stop_counters()
        self.assertEqual(counters["packets"], 90)
        self.assertEqual(counters["drop"], 55)
        self.assertEqual(counters["accept"], 35)

    def test_rules_hand_packets_to_the_chain_with_inspect(self):
        self.lab.queue_rule(f"--queue-num {QUEUE}")
        self.start("""
[[extensions]]
name = "probe_a"
parameters = "drop"
""", rules="""
[[rules]]
name = "inspect-7601"
protocol = "udp"
dst_ports = [7601]
action = "inspect"
""")
        src = [self.lab.client_addresses[0]]
        with nslab.daemon_log_on_failure(self):
            self.assertEqual(self.lab.udp_exchange(7601, 40, rate=500, sources=src)["received"], 0)
            self.assertEqual(self.lab.udp_exchange(7602, 25, rate=500, sources=src)["received"], 25)
            self.assertIn("calls 40", self.ext_ok("info", "probe_a"))
            counters = self.stop_counters()
        self.assertEqual(counters["drop"], 40)
        self.assertEqual(counters["accept"], 25)

    def setup_ipv6(self):
        lab = self.lab
        lab.ns(lab.client, "ip", "-6", "addr", "add", "fd01::10/64", "dev", "c0", "nodad")
        lab.ns(lab.firewall, "ip", "-6", "addr", "add", "fd01::1/64", "dev", "f0", "nodad")
        lab.ns(lab.firewall, "ip", "-6", "addr", "add", "fd02::1/64", "dev", "f1", "nodad")
        lab.ns(lab.server, "ip", "-6", "addr", "add", "fd02::2/64", "dev", "s0", "nodad")
        lab.ns(lab.client, "ip", "-6", "route", "add", "default", "via", "fd01::1")
        lab.ns(lab.server, "ip", "-6", "route", "add", "default", "via", "fd02::1")
        lab.ns(lab.firewall, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")

    def queue_forward_both(self, *match):
        # The firewall's forwarded IPv4 and IPv6 packets that `match` selects
        # go to the queue.
        for tool in ("iptables", "ip6tables"):
            self.lab.ns(self.lab.firewall, tool, "-A", "FORWARD", *match, "-j", "NFQUEUE",
                        "--queue-num", str(QUEUE))

    def exchange(self, port, messages, v6, tcp, deadline=10):
        params = {"port": port, "v6": v6, "tcp": tcp, "expect": len(messages), "deadline": deadline}
        receiver = self.lab.popen(self.lab.server, [sys.executable, "-c", _COLLECTOR, json.dumps(params)])
        self.assertEqual(receiver.stdout.readline().strip(), "READY")
        sender = self.lab.popen(self.lab.client, [sys.executable, "-c", _SEND, json.dumps(
            {"dst": "fd02::2" if v6 else self.lab.SERVER, "port": port, "v6": v6, "tcp": tcp,
             "messages": messages})])
        sender.communicate(timeout=60)
        out, err = receiver.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1])["payloads"]

    def test_rewritten_packets_reach_real_sockets_on_ipv4_and_ipv6(self):
        self.setup_ipv6()
        for proto in ("udp", "tcp"):
            self.queue_forward_both("-p", proto, "--dport", "7201:7202")
        # UDP may change length; TCP keeps it (the stream's sequence numbers).
        self.start("""
[[extensions]]
name = "rewrite"
parameters = "hello=HOWDY,grow=GROWN!"
""")
        messages = ["say hello and grow", "nothing here", "hello hello"]
        expected = ["say HOWDY and GROWN!", "nothing here", "HOWDY HOWDY"]
        tcp_messages = ["hello tcp ", "plain ", "and hello again"]
        with nslab.daemon_log_on_failure(self):
            for v6 in (False, True):
                self.assertEqual(self.exchange(7201, messages, v6, False), expected, f"udp v6={v6}")
                stream = self.exchange(7202, tcp_messages, v6, True)
                self.assertEqual(stream, ["HOWDY tcp plain and HOWDY again"], f"tcp v6={v6}")
            metrics = self.scrape()
            if metrics:
                # 2 UDP datagrams and 2 TCP segments rewritten per family.
                self.assertIn('verdictd_extension_counter_total{extension="rewrite",counter="rewritten"} 8',
                              metrics)
            self.stop_counters()

    def test_async_verdicts_out_of_order_and_on_sigterm(self):
        self.lab.queue_rule(f"--queue-num {QUEUE}")
        self.start("""
[[extensions]]
name = "slowlookup"
parameters = "delay_us=2000,spread=8,drop_port=7302"
""", host='pending_timeout_ms = 5000\ntimeout_verdict = "drop"\narena_concurrency = 32')
        src = [self.lab.client_addresses[0]]
        with nslab.daemon_log_on_failure(self):
            self.assertEqual(self.lab.udp_exchange(7301, 400, rate=1000, sources=src)["received"], 400)
            self.assertEqual(self.lab.udp_exchange(7302, 100, rate=1000, sources=src)["received"], 0)
            listing = self.ext_ok("list")
            self.assertIn("calls=500", listing)
            # Slow lookups (1.5 s), then SIGTERM while 20 are in flight: each
            # still completes (the timeout verdict would be drop) before exit.
            self.assertTrue(self.ext_ok("del", "slowlookup"))
            self.ext_ok("add", "slowlookup", "delay_us=1500000")
            self.ext_ok("start", "slowlookup")
            receiver = self.lab.udp_receiver(7303, expect=20, deadline=20)
            self.lab.udp_send(7303, 20, rate=1000, sources=src)
            nslab.wait_for(lambda: 'verdictd_extension_pending_packets{extension="slowlookup"} 20'
                           in self.scrape(), "20 packets pending")
            counters = self.stop_counters()
            self.assertEqual(receiver.result()["received"], 20)
        self.assertEqual(counters["packets"], 520)
        self.assertEqual(counters["accept"], 420)
        self.assertEqual(counters["drop"], 100)
        stats = self.lab.nfqueue_stats()
        self.assertNotIn(QUEUE, stats)  # unbound: nothing left in the kernel queue

    def test_live_changes_under_steady_traffic_lose_nothing(self):
        self.lab.queue_rule(f"--queue-num {QUEUE}")
        self.start("""
[[extensions]]
name = "template"
""")
        src = [self.lab.client_addresses[0]]
        total = 3000
        with nslab.daemon_log_on_failure(self):
            receiver = self.lab.udp_receiver(7401, expect=total, idle=3.0, deadline=60)
            sender = self.lab.udp_send(7401, total, rate=600, sources=src, background=True)
            steps = [("add", "probe_b", "accept"), ("group", "probe_b", "0x0"),
                     ("start", "probe_b"), ("stop", "probe_b"), ("del", "probe_b"),
                     ("add", "probe_a", "drop"), ("start", "probe_a"), ("group", "probe_a", "0x4"),
                     ("group", "probe_a", "0"), ("stop", "probe_a"), ("del", "probe_a"),
                     ("stop", "template"), ("start", "template")]
            for step in steps:
                self.ext_ok(*step)
                time.sleep(0.25)  # let traffic flow between changes
            sender.result()
            received = receiver.result()["received"]
            counters = self.stop_counters()
        stats_drop = counters.get("drop", 0)
        self.assertEqual(counters["packets"], total)
        self.assertEqual(received + stats_drop, total)
        self.assertGreater(stats_drop, 0, "probe_a never dropped")
        # Unmapped only after the worker moved to a chain without it.
        self.assertIn(f"extension probe_a unloaded ({self.extdir}/probe_a.so)", self.daemon.log())

    def test_bad_extensions_are_refused_and_the_service_keeps_running(self):
        self.lab.queue_rule(f"--queue-num {QUEUE}")
        self.start("""
[[extensions]]
name = "bad_abi"
[[extensions]]
name = "template"
""")
        src = [self.lab.client_addresses[0]]
        with nslab.daemon_log_on_failure(self):
            log = self.daemon.log()
            self.assertIn(f"extension {self.extdir}/bad_abi.so: was built for extension ABI 2.0", log)
            code, text = self.ext("add", "no_entry")
            self.assertNotEqual(code, 0)
            self.assertIn("no_entry.so: has no entry symbol", text)
            code, text = self.ext("add", "init_fails")
            self.assertIn("cannot reach the reputation database", text)
            code, text = self.ext("add", "rewrite", "oops")
            self.assertIn("refused to load with parameters \"oops\"", text)
            # A declared parameter table is checked before the extension's own code runs.
            code, text = self.ext("add", "slowlookup", "delay_us=5,colour=red")
            self.assertNotEqual(code, 0)
            self.assertIn('(slowlookup) refused: parameter "colour": unknown '
                          '(known: delay_us, spread, drop_port)', text)
            self.assertIn("delay_us=...  unsigned integer in 0..10000000, default 1000",
                          self.ext_ok("help", "slowlookup"))
            os.chmod(self.extdir, 0o777)
            code, text = self.ext("add", "flowcount")
            self.assertIn("is writable by group or others (mode 0777)", text)
            os.chmod(self.extdir, 0o755)
            self.assertEqual(self.lab.udp_exchange(7501, 50, rate=500, sources=src)["received"], 50)
            self.assertIn("packets 50", self.ext_ok("info", "template"))
            self.assertIn("usage: parameters = \"FROM=TO", self.ext_ok("help", "rewrite"))
            counters = self.stop_counters()
        self.assertEqual(counters["accept"], 50)


if __name__ == "__main__":
    unittest.main()
