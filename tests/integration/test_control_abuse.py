"""Bad input on verdictd's control socket, while packets flow through a queue.

verdictd runs in the lab's firewall with a queue carrying steady UDP traffic
from the client to the server. Meanwhile its control socket gets:
  * unknown commands, binary garbage, NUL bytes, very long single tokens;
  * a line of 1 MiB without a newline;
  * half-closed connections (SHUT_WR before any byte, after part of a command,
    after a whole command without its newline);
  * clients that send nothing, and one that dribbles a byte at a time;
  * a flood of 300 connections opened at once, some never sending.
Each gets the documented answer (docs/configuration.md, "Control socket"):
an "error: ..." line saying what was wrong, or "ok" for a complete command,
then the server closes. No client delays another: `verdictd ctl status`
answers while silent clients still hold their connections. At the end every
datagram sent has arrived (exact count), `ctl status` and the control
counters agree with what was sent, and verdictd stops cleanly.
"""

import os
import select
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

PORT = 7301
QUEUE = 5
MAX_REQUEST = 256  # control.cc kMaxRequest
MAX_CLIENTS = 32   # control.cc kMaxClients


def read_reply(sock, deadline=30.0):
    """Everything the server writes until it closes (bytes)."""
    sock.settimeout(deadline)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


class ControlAbuseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        nslab.require_root_tools()
        cls.lab = nslab.Lab(client_addresses=4)
        cls.lab.setup()
        cls.socket_path = os.path.join(cls.lab.tmpdir, "control.sock")
        cls.lab.queue_rule(f"--queue-num {QUEUE}", match=f"-p udp --dport {PORT}")
        cls.daemon = cls.lab.start_verdictd("--queues", str(QUEUE), "--no-fail-open",
                                            "--set", f'control.socket="{cls.socket_path}"',
                                            "--set", "metrics.enabled=false")

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A blocking connect waits while the listen backlog is full (with a
        # timeout set, Python's non-blocking connect would fail with EAGAIN).
        s.setblocking(True)
        s.connect(self.socket_path)
        s.settimeout(30)
        return s

    def ask(self, payload, shut_wr=True):
        with self.connect() as s:
            s.sendall(payload)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
            return read_reply(s).decode("utf-8", "replace")

    def test_abuse_leaves_workers_and_server_undisturbed(self):
        lab = self.lab
        with nslab.daemon_log_on_failure(self):
            # Steady traffic through the queue for the whole test.
            count, rate = 12000, 1000
            receiver = lab.udp_receiver(PORT, expect=count, idle=5.0, deadline=90.0)
            sender = lab.udp_send(PORT, count, size=60, rate=rate, background=True)
            nslab.wait_for(lambda: lab.nfqueue_stats().get(QUEUE, {}).get("id_sequence", 0) > 0,
                           "traffic to reach the queue")
            connections = 0

            # Malformed commands: each an error that says what was wrong.
            cases = [
                (b"frobnicate\n", "error: unknown command \"frobnicate\""),
                (b"\xff\xfe\x00\x01garbage\x7f\n", "error: command contains non-printable bytes"),
                (b"sta\x00tus\n", "error: command contains non-printable bytes"),
                (b"status\x00\n", "error: command contains non-printable bytes"),
                (b"A" * 200 + b"\n", "error: unknown command \"" + "A" * 40 + "\""),
                (b"B" * (MAX_REQUEST + 1) + b"\n", f"error: command longer than {MAX_REQUEST} bytes"),
                (b"\n", "error: unknown command \"\""),
                (b"reload now please\n", "error: unknown command"),
            ]
            for payload, expected in cases:
                reply = self.ask(payload)
                connections += 1
                self.assertTrue(reply.startswith(expected), f"{payload[:30]!r}: {reply!r}")
                self.assertEqual(reply.count("\n"), 1, reply)

            # Half-closed: the command is what came before the end of the writes.
            self.assertTrue(self.ask(b"").startswith("error: unknown command \"\""))
            self.assertTrue(self.ask(b"sta").startswith("error: unknown command \"sta\""))
            self.assertTrue(self.ask(b"status").startswith("ok\n"))
            connections += 3
            # Shut down after a whole line: answered, and the close is clean.
            with self.connect() as s:
                s.sendall(b"status\n")
                reply = read_reply(s).decode()
                s.shutdown(socket.SHUT_WR)
            connections += 1
            self.assertTrue(reply.startswith("ok\n"), reply)

            # 1 MiB without a newline: the error after 256 bytes, then the
            # server closes without reading the rest (our sends then fail).
            with self.connect() as s:
                s.setblocking(False)
                blob, sent, refused = b"x" * (1 << 20), 0, None
                while sent < len(blob):
                    select.select([], [s], [], 5)
                    try:
                        sent += s.send(blob[sent:sent + 65536])
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError) as error:
                        refused = error
                        break
                s.setblocking(True)
                reply = read_reply(s).decode()
            connections += 1
            self.assertTrue(reply.startswith(f"error: command longer than {MAX_REQUEST} bytes"),
                            reply)
            self.assertIsNotNone(refused, f"the server read all {sent} bytes of the oversized line")

            # Silent clients do not block others: `ctl status` answers while
            # they still hold their connections, and they get the timeout error.
            silent = [self.connect() for _ in range(3)]
            connections += 3
            status = lab.ctl_status(self.socket_path)
            connections += 1
            self.assertIn("packets", status)
            for s in silent:
                readable, _, _ = select.select([s], [], [], 0)
                self.assertFalse(readable, "a silent client was answered before ctl status")
            for s in silent:
                reply = read_reply(s).decode()
                s.close()
                self.assertTrue(reply.startswith("error: no complete command within 1 s"), reply)

            # A client that dribbles one byte at a time is cut off at its
            # deadline, not served byte by byte for minutes.
            with self.connect() as s:
                connections += 1
                dribbled, closed = 0, False
                for ch in (b"status" * 50)[:MAX_REQUEST]:
                    try:
                        s.send(bytes([ch]))
                    except (BrokenPipeError, ConnectionResetError):
                        closed = True
                        break
                    dribbled += 1
                    readable, _, _ = select.select([s], [], [], 0.1)
                    if readable:
                        closed = True
                        break
                reply = read_reply(s).decode()
            self.assertTrue(closed, f"the server kept reading a client that dribbled {dribbled} bytes")
            self.assertTrue(reply.startswith("error: no complete command within 1 s"), reply)

            # A flood: 300 connections at once, every third never sends; the
            # others send "status". Every one gets an answer and a close: ok,
            # busy (more than 32 waiting at once) or the timeout error.
            flood = []
            for i in range(300):
                s = self.connect()
                flood.append((i, s))
                if i % 3:
                    try:
                        s.sendall(b"status\n")
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # already refused as busy; its reply is read below
            connections += len(flood)
            kinds = {"ok": 0, "busy": 0, "timeout": 0}
            for i, s in flood:
                reply = read_reply(s).decode()
                s.close()
                if reply.startswith("ok\n"):
                    kind = "ok"
                    self.assertTrue(i % 3, f"silent client {i} got ok")
                elif reply.startswith(f"error: busy: {MAX_CLIENTS} control connections"):
                    kind = "busy"
                elif reply.startswith("error: no complete command within 1 s"):
                    kind = "timeout"
                    self.assertFalse(i % 3, f"client {i} sent a whole line and timed out")
                else:
                    self.fail(f"flood client {i}: unexpected reply {reply!r}")
                kinds[kind] += 1
            print(f"\n  flood of {len(flood)}: {kinds}", flush=True)
            self.assertGreater(kinds["ok"], 0)

            # The server still answers, and counted every connection.
            status = lab.ctl_status(self.socket_path)
            connections += 1
            self.assertEqual(int(status["control_requests"]), connections, status)
            self.assertEqual(self.daemon.proc.poll(), None, "verdictd died")

            # The workers saw none of it: every datagram arrived.
            sent = sender.result()["sent"]
            result = receiver.result()
            self.assertEqual(sent, count)
            self.assertEqual(result["received"], count, f"lost {count - result['received']}")
            kernel = lab.nfqueue_stats()[QUEUE]
            self.assertEqual(kernel["queue_dropped"] + kernel["user_dropped"], 0, kernel)
            self.assertEqual(kernel["id_sequence"], count, kernel)
            status = lab.ctl_status(self.socket_path)
            self.assertEqual(int(status["packets"]), count, status)
            self.assertEqual(int(status["verdicts_accept"]), count, status)
            self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
            self.assertNotIn("control socket: poll()", self.daemon.log())


if __name__ == "__main__":
    unittest.main()
