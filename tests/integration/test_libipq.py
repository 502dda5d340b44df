"""libipq on the real kernel: programs written for ip_queue, unchanged, on NFQUEUE.

The man page's passer.c is compiled as printed (`cc passer.c -lipq`) against
the built library and passes ping and UDP through a firewall namespace with
`iptables-legacy -j QUEUE`, and with `-j NFQUEUE --queue-num N` plus
LIBIPQ_QUEUE=N. ipq_tool (tests/libipq/ipq_tool.c, public API only) checks
IPv6, timeouts, metadata-only copies, NF_DROP and the documented errors; the
examples drop and rewrite packets; an installed tree builds with both header
spellings and pkg-config. Every count is exact. Needs root (exit 77 otherwise).
"""

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

SOURCE = os.environ.get("VERDICTD_SOURCE_DIR",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("VERDICTD_BUILD_DIR", os.path.join(SOURCE, "build"))
LIBDIR = os.path.join(BUILD, "libipq")
INCLUDE = os.path.join(SOURCE, "libipq", "include")
EXAMPLES = os.path.join(SOURCE, "libipq", "examples")
IPQ_TOOL = os.path.join(BUILD, "tests", "libipq", "ipq_tool")

# ipq_errno values (libipq.h) and errno values.
IPQ_ERR_HANDLE, IPQ_ERR_BIND, IPQ_ERR_RTRUNC, IPQ_ERR_RECVBUF, IPQ_ERR_TIMEOUT = 2, 4, 10, 14, 15
EPERM, EBUSY, EINVAL, EMSGSIZE = 1, 16, 22, 90
RECORD_HEADER = 16 + 96  # nlmsghdr + offsetof(ipq_packet_msg_t, payload) on x86-64

V6_CLIENT, V6_SERVER = "fd77:1::10", "fd77:2::2"

_PAYLOAD_RECEIVER = r"""
import json, socket, sys, time
p = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET6 if ":" in p["bind"] else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE: a burst is counted, never dropped
s.bind((p["bind"], p["port"]))
print("READY", flush=True)
payloads, deadline, last = {}, time.monotonic() + p["deadline"], None
while time.monotonic() < deadline and sum(payloads.values()) < p["expect"] + 1:
    if last is not None and time.monotonic() - last > p["idle"]:
        break
    s.settimeout(0.05)
    try:
        data = s.recv(65535)
    except socket.timeout:
        continue
    last = time.monotonic()
    payloads[data.decode("latin-1")] = payloads.get(data.decode("latin-1"), 0) + 1
print(json.dumps({"received": sum(payloads.values()), "payloads": payloads}), flush=True)
"""

_SENDER = r"""
import json, socket, sys
p = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET6 if ":" in p["dst"] else socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(p["count"]):
    s.sendto(p["payload"].encode(), (p["dst"], p["port"]))
print(json.dumps({"sent": p["count"]}), flush=True)
"""


def sanitizer_flags():
    """The build's sanitizer, for programs linked with its instrumented libipq."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as cache:
            for line in cache:
                if line.startswith("VERDICTD_SANITIZE:"):
                    value = line.strip().split("=", 1)[1]
                    return {"address": ["-fsanitize=address,undefined"],
                            "thread": ["-fsanitize=thread"]}.get(value, [])
    except OSError:
        pass
    return []


def cc(out, *args):
    """Compiles a C program the way a user does; fails the test with the output."""
    result = subprocess.run(["cc", *args, "-o", out, *sanitizer_flags()],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError("cc %s failed:\n%s%s" % (" ".join(args), result.stdout, result.stderr))
    return out


class Program:
    """A queue program in a namespace; its stdout lines are collected as they come."""

    def __init__(self, lab, argv, env=None, prefix=()):
        full_env = dict(os.environ)
        full_env["LD_LIBRARY_PATH"] = LIBDIR
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        full_env.update(env or {})
        self.proc = lab.popen(lab.firewall, [*prefix, *argv], env=full_env)
        self.lines = queue.Queue()
        self.out = []
        self.err = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines, self.out),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, None, self.err),
                         daemon=True).start()

    @staticmethod
    def _pump(stream, lines, keep):
        for line in stream:
            keep.append(line)
            if lines is not None:
                lines.put(line)
        if lines is not None:
            lines.put(None)

    def next_json(self, timeout=10):
        """The next JSON line on stdout (None at exit)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no output within %ss; stderr: %s" %
                                     (timeout, "".join(self.err)))
            if line is None:
                return None
            if line.strip().startswith("{"):
                return json.loads(line)

    def wait_ready(self):
        first = self.next_json()
        if first is None or not first.get("ready"):
            self.wait()
            raise AssertionError("not ready: %s %s" % (first, "".join(self.err)))

    def wait(self, timeout=30):
        code = self.proc.wait(timeout=timeout)
        time.sleep(0)  # let the pumps see the end of the streams
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def stderr(self):
        return "".join(self.err)

    def stdout_json(self):
        return [json.loads(l) for l in self.out if l.strip().startswith("{")]


class Libipq(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        nslab.require_root_tools()
        for tool in ("iptables-legacy", "ip6tables-legacy", "cc", "ping"):
            if shutil.which(tool) is None:
                nslab.skip("needs %s" % tool)
        for path in (os.path.join(LIBDIR, "libipq.so"), IPQ_TOOL):
            if not os.path.exists(path):
                nslab.skip("%s is not built (build the ipq and ipq_tool targets)" % path)
        cls.lab = nslab.Lab(client_addresses=2)
        cls.lab.setup()
        lab = cls.lab
        # Programs run as another user in one test: the directory must be open to it.
        os.chmod(lab.tmpdir, 0o755)
        cls.passer = cc(os.path.join(lab.tmpdir, "passer"), os.path.join(EXAMPLES, "passer.c"),
                        "-I" + INCLUDE, "-L" + LIBDIR, "-lipq")
        # IPv6 beside the lab's IPv4: client fd77:1::10 -> firewall -> server fd77:2::2.
        for ns, dev, addr in ((lab.client, "c0", V6_CLIENT + "/64"),
                              (lab.firewall, "f0", "fd77:1::1/64"),
                              (lab.firewall, "f1", "fd77:2::1/64"),
                              (lab.server, "s0", V6_SERVER + "/64")):
            lab.ns(ns, "ip", "-6", "addr", "add", addr, "dev", dev, "nodad")
        lab.ns(lab.client, "ip", "-6", "route", "add", "default", "via", "fd77:1::1")
        lab.ns(lab.server, "ip", "-6", "route", "add", "default", "via", "fd77:2::1")
        lab.ns(lab.firewall, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def setUp(self):
        self.flush()

    def tearDown(self):
        self.flush()

    # --- helpers -----------------------------------------------------------
    def flush(self):
        self.lab.flush_rules()
        for tool in ("iptables-legacy", "ip6tables-legacy"):
            self.lab.ns(self.lab.firewall, tool, "-w", "-F", "FORWARD")

    def legacy(self, *rule, tool="iptables-legacy"):
        self.lab.ns(self.lab.firewall, tool, "-w", "-A", "FORWARD", *rule)

    def queue_stats(self, queue_num):
        return self.lab.nfqueue_stats().get(queue_num)

    def wait_bound(self, queue_num, program=None):
        def bound():
            if program is not None and program.proc.poll() is not None:
                raise AssertionError("exited %s: %s" % (program.proc.returncode, program.stderr()))
            return self.queue_stats(queue_num) is not None
        nslab.wait_for(bound, "queue %d bound" % queue_num)

    def start(self, argv, env=None, prefix=(), ready=True):
        program = Program(self.lab, argv, env=env, prefix=prefix)
        if ready:
            program.wait_ready()
        return program

    def receiver(self, port, expect, bind="0.0.0.0", idle=1.0, deadline=20.0):
        params = {"port": port, "expect": expect, "bind": bind, "idle": idle,
                  "deadline": deadline}
        proc = self.lab.popen(self.lab.server, [sys.executable, "-c", _PAYLOAD_RECEIVER,
                                                json.dumps(params)])
        if proc.stdout.readline().strip() != "READY":
            raise AssertionError("receiver did not start: %s" % proc.stderr.read())
        return nslab._JsonProcess(proc, deadline + 30)

    def send(self, port, count, payload="hello libipq", dst=nslab.Lab.SERVER):
        params = {"dst": dst, "port": port, "count": count, "payload": payload}
        self.lab.ns(self.lab.client, sys.executable, "-c", _SENDER, json.dumps(params))

    def ping(self, count, dst=nslab.Lab.SERVER):
        result = self.lab.ns(self.lab.client, "ping", "-c", str(count), "-i", "0.2", "-W", "2",
                             dst, check=False)
        self.assertIn("%d received" % count, result.stdout, result.stdout + result.stderr)

    # --- the man page's program --------------------------------------------
    def test_passer_unmodified_passes_ping_and_udp_through_legacy_queue(self):
        passer = Program(self.lab, [self.passer])
        self.wait_bound(0, passer)
        self.legacy("-p", "icmp", "-j", "QUEUE")
        self.legacy("-p", "udp", "--dport", "9100", "-j", "QUEUE")
        self.ping(5)
        receiver = self.receiver(9100, expect=300)
        self.send(9100, 300)
        result = receiver.result()
        stats = self.queue_stats(0)
        self.assertEqual(passer.stop(), -signal.SIGTERM, passer.stderr())
        self.assertEqual(result["received"], 300)
        # 5 echo requests and 5 replies cross FORWARD, then 300 datagrams.
        self.assertEqual(stats["id_sequence"], 10 + 300, stats)
        self.assertEqual(stats["queue_total"], 0, stats)
        self.assertEqual(stats["queue_dropped"] + stats["user_dropped"], 0, stats)
        self.assertEqual(passer.stderr(), "")

    def test_passer_on_nfqueue_queue_number_from_environment(self):
        passer = Program(self.lab, [self.passer], env={"LIBIPQ_QUEUE": "5"})
        self.wait_bound(5, passer)
        self.assertIsNone(self.queue_stats(0))
        self.lab.queue_rule("--queue-num 5", match="-p udp --dport 9101")
        self.lab.queue_rule("--queue-num 5", match="-p icmp")
        self.ping(3)
        receiver = self.receiver(9101, expect=200)
        self.send(9101, 200)
        result = receiver.result()
        stats = self.queue_stats(5)
        passer.stop()
        self.assertEqual(result["received"], 200)
        self.assertEqual(stats["id_sequence"], 6 + 200, stats)
        self.assertEqual(stats["queue_total"], 0, stats)

    # --- IPv6, copy modes, verdicts ----------------------------------------
    def test_ipv6_through_ip6tables_queue_with_a_pf_inet6_handle(self):
        tool = self.start([IPQ_TOOL, "--family", "6", "--count", "20"])
        self.legacy("-p", "udp", "--dport", "9102", "-j", "QUEUE", tool="ip6tables-legacy")
        receiver = self.receiver(9102, expect=20, bind="::")
        self.send(9102, 20, dst=V6_SERVER)
        result = receiver.result()
        self.assertEqual(tool.wait(), 0, tool.stderr())
        packets = [p for p in tool.stdout_json() if "packet" in p]
        self.assertEqual(result["received"], 20)
        self.assertEqual(len(packets), 20)
        self.assertTrue(all(p["version"] == 6 for p in packets), packets[0])
        self.assertEqual({p["data_len"] for p in packets}, {40 + 8 + len("hello libipq")})

    def test_metadata_only_mode_fills_interfaces_and_hardware_address(self):
        tool = self.start([IPQ_TOOL, "--mode", "meta", "--count", "10"])
        self.legacy("-p", "udp", "--dport", "9103", "-j", "QUEUE")
        receiver = self.receiver(9103, expect=10)
        self.send(9103, 10)
        result = receiver.result()
        self.assertEqual(tool.wait(), 0, tool.stderr())
        packets = [p for p in tool.stdout_json() if "packet" in p]
        self.assertEqual(result["received"], 10)
        self.assertEqual(len(packets), 10)
        client_mac = json.loads(self.lab.ns(self.lab.client, "ip", "-j", "link", "show",
                                            "c0").stdout)[0]["address"]
        for p in packets:
            self.assertEqual(p["data_len"], 0, p)
            self.assertEqual(p["length"], RECORD_HEADER, p)
            self.assertEqual((p["indev"], p["outdev"]), ("f0", "f1"), p)
            self.assertEqual(p["hook"], 2, p)  # NF_INET_FORWARD
            self.assertEqual(p["hw_addrlen"], 6, p)
            self.assertEqual(p["hw_addr"], client_mac, p)
            self.assertEqual(p["hw_type"], 1, p)  # ARPHRD_ETHER
            self.assertEqual(p["hw_protocol"], 0x0008, p)  # htons(ETH_P_IP) as read on x86
            self.assertGreater(p["timestamp_sec"], 1600000000, p)
        ids = [p["packet"] for p in packets]
        self.assertEqual(ids, list(range(ids[0], ids[0] + 10)))

    def test_packet_mode_copies_the_packet(self):
        tool = self.start([IPQ_TOOL, "--count", "5"])
        self.legacy("-p", "udp", "--dport", "9104", "-j", "QUEUE")
        receiver = self.receiver(9104, expect=5)
        self.send(9104, 5, payload="x" * 100)
        self.assertEqual(receiver.result()["received"], 5)
        self.assertEqual(tool.wait(), 0, tool.stderr())
        packets = [p for p in tool.stdout_json() if "packet" in p]
        self.assertEqual([p["data_len"] for p in packets], [20 + 8 + 100] * 5)
        self.assertEqual([p["length"] for p in packets], [RECORD_HEADER + 128] * 5)
        self.assertTrue(all(p["version"] == 4 for p in packets))

    def test_drop_verdict_delivers_nothing(self):
        tool = self.start([IPQ_TOOL, "--verdict", "drop", "--count", "25"])
        self.legacy("-p", "udp", "--dport", "9105", "-j", "QUEUE")
        receiver = self.receiver(9105, expect=0, idle=0.5, deadline=3.0)
        self.send(9105, 25)
        self.assertEqual(tool.wait(), 0, tool.stderr())
        self.assertEqual(receiver.result()["received"], 0)
        stats = self.queue_stats(0)
        self.assertIsNone(stats)  # unbound at exit
        self.assertEqual(len([p for p in tool.stdout_json() if "packet" in p]), 25)

    def test_held_packets_are_never_covered_by_a_batch_verdict(self):
        # Groups of 8 held; 7 accepted in order (foldable into one batch
        # verdict), then the oldest dropped: exactly 7 of each 8 arrive.
        tool = self.start([IPQ_TOOL, "--hold", "8", "--count", "64"])
        self.legacy("-p", "udp", "--dport", "9109", "-j", "QUEUE")
        receiver = self.receiver(9109, expect=56)
        self.send(9109, 64)
        result = receiver.result()
        self.assertEqual(tool.wait(), 0, tool.stderr())
        self.assertEqual(result["received"], 56)
        self.assertEqual([p for p in tool.stdout_json() if "nlmsg_error" in p], [])

    def test_verdicts_from_another_thread_while_the_reader_blocks(self):
        tool = self.start([IPQ_TOOL, "--verdict-thread", "--count", "300"])
        self.legacy("-p", "udp", "--dport", "9110", "-j", "QUEUE")
        receiver = self.receiver(9110, expect=300)
        self.send(9110, 300)
        result = receiver.result()
        self.assertEqual(tool.wait(), 0, tool.stderr())
        self.assertEqual(result["received"], 300)
        self.assertEqual(self.queue_stats(0), None)

    def test_dropper_example_drops_ping(self):
        dropper = Program(self.lab, [os.path.join(LIBDIR, "dropper"), "3"])
        self.wait_bound(0, dropper)
        self.legacy("-p", "icmp", "-j", "QUEUE")
        result = self.lab.ns(self.lab.client, "ping", "-c", "3", "-i", "0.2", "-W", "1",
                             nslab.Lab.SERVER, check=False)
        self.assertIn("0 received", result.stdout)
        self.assertEqual(dropper.wait(), 0, dropper.stderr())
        self.assertEqual(len([l for l in dropper.out if l.startswith("dropped packet")]), 3)

    def test_rewrite_example_changes_the_payload_at_the_receiver(self):
        rewrite = Program(self.lab, [os.path.join(LIBDIR, "rewrite"), "10"])
        self.wait_bound(0, rewrite)
        self.legacy("-p", "udp", "--dport", "9106", "-j", "QUEUE")
        receiver = self.receiver(9106, expect=10)
        self.send(9106, 10, payload="hello, queue!")
        result = receiver.result()
        self.assertEqual(rewrite.wait(), 0, rewrite.stderr())
        # Checksums were fixed, or the server's UDP stack would have dropped them.
        self.assertEqual(result["payloads"], {"HELLO, QUEUE!": 10})

    # --- ipq_read timeouts ---------------------------------------------------
    def test_read_timeout_returns_zero_with_ipq_err_timeout(self):
        tool = self.start([IPQ_TOOL, "--timeout", "200000", "--reads", "2"])
        self.assertEqual(tool.wait(), 0, tool.stderr())
        lines = [p for p in tool.stdout_json() if "timeout" in p]
        self.assertEqual(len(lines), 2)
        for line in lines:
            self.assertEqual((line["ipq_errno"], line["errstr"]), (IPQ_ERR_TIMEOUT, "Timeout"))
            self.assertGreaterEqual(line["elapsed_us"], 200000)  # never early

    def test_negative_timeout_does_not_wait(self):
        tool = self.start([IPQ_TOOL, "--timeout", "-1", "--reads", "1"])
        self.assertEqual(tool.wait(), 0, tool.stderr())
        self.assertEqual([p["ipq_errno"] for p in tool.stdout_json() if "timeout" in p],
                         [IPQ_ERR_TIMEOUT])

    def test_read_with_timeout_returns_packets_that_arrive(self):
        tool = self.start([IPQ_TOOL, "--timeout", "5000000", "--count", "4"])
        self.legacy("-p", "udp", "--dport", "9107", "-j", "QUEUE")
        receiver = self.receiver(9107, expect=4)
        self.send(9107, 4)
        self.assertEqual(receiver.result()["received"], 4)
        self.assertEqual(tool.wait(), 0, tool.stderr())
        out = tool.stdout_json()
        self.assertEqual(len([p for p in out if "packet" in p]), 4)
        self.assertEqual([p for p in out if "timeout" in p], [])

    # --- errors ----------------------------------------------------------------
    def expect_error(self, tool, code, call, ipq_errno, errstr, errno_value, strerror):
        self.assertEqual(tool.wait(), code, tool.stderr())
        errors = [p for p in tool.stdout_json() if "error" in p]
        self.assertEqual(errors, [{"error": call, "ipq_errno": ipq_errno, "errstr": errstr,
                                   "errno": errno_value}])
        self.assertIn("ipq_tool: %s: %s\n" % (errstr, strerror), tool.stderr())

    def test_queue_held_by_another_process(self):
        passer = Program(self.lab, [self.passer])
        self.wait_bound(0, passer)
        tool = self.start([IPQ_TOOL], ready=False)
        self.expect_error(tool, 4, "ipq_set_mode", IPQ_ERR_BIND, "Unable to bind netlink socket",
                          EBUSY, "Device or resource busy")
        self.assertIn("queue 0", tool.stderr())
        self.assertEqual(passer.proc.poll(), None)  # the holder is untouched
        passer.stop()

    def test_no_cap_net_admin(self):
        if shutil.which("setpriv") is None:
            self.skipTest("needs setpriv")
        tool = self.start([IPQ_TOOL], ready=False,
                          prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                  "--inh-caps=-all"))
        self.expect_error(tool, 4, "ipq_set_mode", IPQ_ERR_BIND, "Unable to bind netlink socket",
                          EPERM, "Operation not permitted")
        self.assertIn("CAP_NET_ADMIN", tool.stderr())

    def test_buffer_too_small_for_the_message(self):
        tool = self.start([IPQ_TOOL, "--buf", "100", "--range", "2048"])
        self.legacy("-p", "udp", "--dport", "9108", "-j", "QUEUE")
        receiver = self.receiver(9108, expect=0, idle=0.5, deadline=3.0)
        self.send(9108, 1, payload="y" * 200)
        self.expect_error(tool, 5, "ipq_read", IPQ_ERR_RTRUNC, "Received message truncated",
                          EMSGSIZE, "Message too long")
        # The packet the program could not be given was dropped, not left queued.
        self.assertEqual(receiver.result()["received"], 0)
        self.assertIn("NF_DROP", tool.stderr())

    def test_buffer_smaller_than_an_error_message(self):
        tool = self.start([IPQ_TOOL, "--buf", "8"])
        self.expect_error(tool, 5, "ipq_read", IPQ_ERR_RECVBUF, "Receive buffer size invalid",
                          EINVAL, "Invalid argument")

    def test_invalid_environment_is_named(self):
        tool = self.start([IPQ_TOOL], ready=False, env={"LIBIPQ_QUEUE": "70000"})
        self.expect_error(tool, 3, "ipq_create_handle", IPQ_ERR_HANDLE,
                          "Unable to create netlink handle", EINVAL, "Invalid argument")
        self.assertIn("LIBIPQ_QUEUE='70000'", tool.stderr())

    # --- an installed tree ---------------------------------------------------
    def test_installed_tree_builds_with_both_headers_and_pkg_config(self):
        prefix = tempfile.mkdtemp(prefix="libipq-install-", dir=self.lab.tmpdir)
        result = subprocess.run(["cmake", "--install", LIBDIR, "--prefix", prefix],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        libdirs = [root for root, _, files in os.walk(prefix) if "libipq.so" in files]
        self.assertEqual(len(libdirs), 1, libdirs)
        libdir = libdirs[0]
        for name in ("libipq.so.1", "libipq.a", "pkgconfig/libipq.pc"):
            self.assertTrue(os.path.exists(os.path.join(libdir, name)), name)
        man3 = os.path.join(prefix, "share", "man", "man3")
        for page in ("libipq.3", "ipq_read.3", "ipq_set_verdict.3", "ipq_errstr.3"):
            self.assertTrue(os.path.exists(os.path.join(man3, page)), page)
        include = os.path.join(prefix, "include")
        work = os.path.join(self.lab.tmpdir, "installed")
        os.makedirs(work, exist_ok=True)
        nested = os.path.join(work, "nested.c")
        with open(os.path.join(EXAMPLES, "passer.c")) as f:
            text = f.read()
        with open(nested, "w") as f:
            f.write(text.replace("#include <libipq.h>", "#include <libipq/libipq.h>"))
        cc(os.path.join(work, "passer"), os.path.join(EXAMPLES, "passer.c"), "-I" + include,
           "-L" + libdir, "-lipq")
        cc(os.path.join(work, "nested"), nested, "-I" + include, "-L" + libdir, "-lipq")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libipq"], env=env,
                               capture_output=True, text=True, check=True).stdout.split()
        cc(os.path.join(work, "pc"), os.path.join(EXAMPLES, "passer.c"), *flags)
        static = subprocess.run(["pkg-config", "--static", "--libs", "libipq"], env=env,
                                capture_output=True, text=True, check=True).stdout.split()
        cc(os.path.join(work, "static"), os.path.join(EXAMPLES, "passer.c"), "-I" + include,
           os.path.join(libdir, "libipq.a"), *[f for f in static if f != "-lipq"])
        # Each runs against what was installed (the static one needs no libipq.so).
        for binary, libpath in (("pc", libdir), ("nested", libdir), ("static", "/nonexistent")):
            program = Program(self.lab, [os.path.join(work, binary)],
                              env={"LD_LIBRARY_PATH": libpath})
            self.wait_bound(0, program)
            self.legacy("-p", "icmp", "-j", "QUEUE")
            self.ping(2)
            self.assertEqual(self.queue_stats(0)["id_sequence"], 4, binary)
            program.stop()
            self.flush()
            nslab.wait_for(lambda: self.queue_stats(0) is None, "queue 0 unbound")


if __name__ == "__main__":
    unittest.main()
