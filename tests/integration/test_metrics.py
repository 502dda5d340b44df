"""verdictd's /metrics endpoint under real traffic through the real kernel.

Each test starts verdictd in the lab's firewall namespace (its metrics server
listens on the default 127.0.0.1:9470 of that namespace, where nothing else
runs), sends UDP from the client through the firewall's NFQUEUE rule, scrapes
/metrics from inside the namespace and checks the values exactly:
  * N packets over two queues: packets, verdicts and latency counts equal N
    (split across the queues), bytes equal N * datagram size, and the
    kernel's own packet ids agree; the live scrape passes `promtool check metrics`;
  * a stalled worker (SIGSTOP) with a tiny queue and fail-open off: the
    queue-full drop counter rises by exactly what the receiver did not get;
  * a real Prometheus server scraping every second answers
    sum(verdictd_received_packets_total) = packets sent;
  * a busy metrics port is a one-line startup error with exit status 2.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

METRICS_PORT = 9470  # verdictd's default [metrics] listen port
UDP_HEADERS = 28     # IPv4 + UDP header bytes on top of the payload

_FETCH = r"""
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"""

_FREE_PORT = r"""
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
"""


parse_exposition = nslab.parse_exposition


def total(samples, name, **match):
    """Sum of `name` over the samples whose labels include `match`."""
    return sum(v for (n, labels), v in samples.items()
               if n == name and all((k, str(val)) in labels for k, val in match.items()))


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        nslab.require_root_tools()
        cls.promtool = shutil.which("promtool")
        cls.prometheus = shutil.which("prometheus")
        cls.lab = nslab.Lab(client_addresses=16)
        cls.lab.setup()

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def tearDown(self):
        self.lab.flush_rules()

    # --- helpers ------------------------------------------------------------
    def fetch(self, url):
        return self.lab.ns(self.lab.firewall, sys.executable, "-c", _FETCH, url).stdout

    def scrape(self):
        return self.fetch(f"http://127.0.0.1:{METRICS_PORT}/metrics")

    def scrape_until(self, check, timeout=5.0):
        """Scrapes until check(samples) holds (counters trail the packets by
        microseconds: a verdict is counted after the send that forwarded the
        packet); returns the last samples either way."""
        deadline = time.monotonic() + timeout
        while True:
            samples = parse_exposition(self.scrape())
            if check(samples) or time.monotonic() >= deadline:
                return samples
            time.sleep(0.05)

    def free_port(self):
        return int(self.lab.ns(self.lab.firewall, sys.executable, "-c", _FREE_PORT).stdout)

    def start(self, *args):
        daemon = self.lab.start_verdictd(*args)
        self.addCleanup(lambda: daemon.stop(signal.SIGKILL) if daemon.proc.poll() is None else None)
        return daemon

    def stop(self, daemon):
        self.assertEqual(daemon.stop(), 0, daemon.log())

    # --- tests --------------------------------------------------------------
    def test_counters_equal_packets_sent_across_two_queues(self):
        n, size = 3000, 100
        self.lab.queue_rule("--queue-balance 0:1", match="-p udp --dport 7001")
        daemon = self.start("--queues", "0:1")
        result = self.lab.udp_exchange(7001, n, size=size)
        self.assertEqual(result["received"], n)

        samples = self.scrape_until(
            lambda s: total(s, "verdictd_verdict_latency_seconds_count") >= n)
        per_queue = {q: total(samples, "verdictd_received_packets_total", queue=q) for q in (0, 1)}
        print(f"\n  packets per queue {per_queue}", flush=True)
        self.assertEqual(sum(per_queue.values()), n, per_queue)
        self.assertTrue(all(v > 0 for v in per_queue.values()), f"one queue idle: {per_queue}")
        self.assertEqual(total(samples, "verdictd_received_bytes_total"), n * (size + UDP_HEADERS))
        self.assertEqual(total(samples, "verdictd_verdicts_total"), n)
        self.assertEqual(total(samples, "verdictd_verdicts_total", verdict="accept"), n)
        kernel = self.lab.nfqueue_stats()
        for q in (0, 1):
            self.assertEqual(total(samples, "verdictd_verdicts_total", queue=q), per_queue[q])
            # Every packet verdicted is observed once in the latency histogram.
            self.assertEqual(total(samples, "verdictd_verdict_latency_seconds_count", queue=q), per_queue[q])
            self.assertEqual(total(samples, "verdictd_verdict_latency_seconds_bucket", queue=q, le="+Inf"),
                             per_queue[q])
            # The kernel's own packet ids count the same packets.
            self.assertEqual(total(samples, "verdictd_kernel_queue_last_packet_id", queue=q), per_queue[q])
            self.assertEqual(kernel[q]["id_sequence"], per_queue[q])
            self.assertEqual(total(samples, "verdictd_kernel_queue_bound", queue=q), 1)
            self.assertEqual(total(samples, "verdictd_kernel_queue_waiting_packets", queue=q), 0)
            self.assertEqual(total(samples, "verdictd_worker_up", queue=q), 1)
        self.assertEqual(total(samples, "verdictd_kernel_dropped_packets_total"), 0)
        self.assertGreater(total(samples, "verdictd_verdict_sends_total"), 0)
        self.assertLessEqual(total(samples, "verdictd_verdict_sends_total"), n)
        self.assertGreater(total(samples, "process_resident_memory_bytes"), 0)
        self.assertEqual(total(samples, "verdictd_build_info"), 1)

        if not self.promtool:
            nslab.skip_test(self, "needs Debian's promtool (package prometheus)")
        text = self.scrape()
        check = subprocess.run([self.promtool, "check", "metrics"], input=text, text=True,
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.stop(daemon)

    def test_queue_full_drops_equal_what_the_sender_lost(self):
        sent, maxlen = 400, 16
        self.lab.queue_rule("--queue-num 2", match="-p udp --dport 7002")
        daemon = self.start("--queues", "2", "--queue-maxlen", str(maxlen), "--no-fail-open")
        before = parse_exposition(self.scrape())
        self.assertEqual(total(before, "verdictd_kernel_dropped_packets_total", queue=2), 0)
        receiver = self.lab.udp_receiver(7002, idle=2.0, deadline=20.0)
        os.kill(daemon.pid, signal.SIGSTOP)
        try:
            self.lab.udp_send(7002, sent, rate=4000)
            # Every datagram reached the queue: held or dropped by the kernel.
            nslab.wait_for(lambda: sum(self.lab.nfqueue_stats()[2][k] for k in
                                       ("queue_total", "queue_dropped")) >= sent,
                           f"all {sent} datagrams to reach queue 2")
        finally:
            os.kill(daemon.pid, signal.SIGCONT)
        received = receiver.result()["received"]
        lost = sent - received
        print(f"\n  sent {sent}, received {received}, lost {lost} (queue max length {maxlen})", flush=True)
        self.assertGreater(lost, 0, "the stalled worker's queue never filled")
        samples = self.scrape_until(lambda s: total(s, "verdictd_verdicts_total", queue=2) >= received)
        self.assertEqual(total(samples, "verdictd_kernel_dropped_packets_total", queue=2, reason="queue_full"),
                         lost)
        self.assertEqual(total(samples, "verdictd_kernel_dropped_packets_total", queue=2, reason="socket_full"), 0)
        self.assertEqual(self.lab.nfqueue_stats()[2]["queue_dropped"], lost)
        self.assertEqual(total(samples, "verdictd_received_packets_total", queue=2), received)
        self.assertEqual(total(samples, "verdictd_verdict_latency_seconds_count", queue=2), received)
        self.stop(daemon)

    def test_prometheus_server_sums_to_packets_sent(self):
        if not self.prometheus:
            nslab.skip_test(self, "needs Debian's prometheus binary")
        n = 1000
        self.lab.queue_rule("--queue-balance 0:1", match="-p udp --dport 7003")
        daemon = self.start("--queues", "0:1")
        port = self.free_port()
        workdir = tempfile.mkdtemp(prefix="verdictd-prometheus-")
        self.addCleanup(shutil.rmtree, workdir, True)
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: verdictd\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{METRICS_PORT}']\n")
        log = open(os.path.join(workdir, "prometheus.log"), "w")
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.lab.firewall, self.prometheus, f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.lab._processes.append(server)

        def stop_server():
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
        self.addCleanup(stop_server)

        self.assertEqual(self.lab.udp_exchange(7003, n)["received"], n)
        query = "sum(verdictd_received_packets_total)"
        url = f"http://127.0.0.1:{port}/api/v1/query?query=" + query.replace("(", "%28").replace(")", "%29")
        answer, deadline = None, time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                reply = json.loads(self.fetch(url))
                result = reply["data"]["result"]
                answer = float(result[0]["value"][1]) if result else None
            except (RuntimeError, ValueError, KeyError):
                answer = None
            if answer == n:
                break
            time.sleep(0.5)
        with open(os.path.join(workdir, "prometheus.log")) as f:
            prometheus_log = f.read()[-2000:]
        self.assertEqual(answer, n, f"Prometheus answered {answer} for {query}\n{prometheus_log}")
        verdicts = json.loads(self.fetch(url.replace("verdictd_received_packets_total", "verdictd_verdicts_total")))
        self.assertEqual(float(verdicts["data"]["result"][0]["value"][1]), n)
        self.stop(daemon)

    def test_busy_metrics_port_is_a_one_line_startup_error(self):
        holder = self.lab.popen(self.lab.firewall, [sys.executable, "-c",
                                "import socket,sys,time\ns=socket.socket()\n"
                                f"s.bind(('127.0.0.1',{METRICS_PORT}));s.listen()\n"
                                "print('READY',flush=True)\ntime.sleep(60)"])
        def stop_holder():
            holder.kill()
            holder.communicate()
        self.addCleanup(stop_holder)
        self.assertEqual(holder.stdout.readline().strip(), "READY")
        daemon = self.lab.start_verdictd("--queues", "3", wait_ready=False)
        code = daemon.wait(timeout=20)
        log = daemon.log()
        self.assertEqual(code, 2, log)
        errors = [line for line in log.splitlines() if f"127.0.0.1:{METRICS_PORT}" in line]
        self.assertEqual(len(errors), 1, log)
        self.assertIn("already in use", errors[0])
        self.assertIn("[metrics] listen", errors[0])
        self.assertNotIn("terminate", log)   # no uncaught exception
        self.assertNotIn("Sanitizer", log)


if __name__ == "__main__":
    unittest.main()
