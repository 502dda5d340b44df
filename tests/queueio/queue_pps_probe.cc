// Quick throughput probe of one queue through the real kernel: packets per
// second a single QueueSocket worker gives verdicts to, with batched verdicts
// (VerdictBatcher, one send per receive batch) against one verdict message
// and one send per packet (the reference example's way).
//
// Usage (root): queueio_queue_pps_probe [seconds-per-mode]
// Runs in a throwaway network namespace: a forked sender floods UDP to
// 127.0.0.1:9999 with sendmmsg, iptables queues it to queue 0, and the probe
// accepts everything. Not a test (timing depends on the machine); the
// benchmark harness lives in bench/.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "verdictd/queueio/kernel_queue_stats.h"
#include "verdictd/queueio/parser.h"
#include "verdictd/queueio/queue_socket.h"
#include "verdictd/queueio/verdict_batcher.h"
#include "verdictd/queueio/verdict_encoder.h"

namespace {

using namespace verdictd::queueio;
using Clock = std::chrono::steady_clock;

constexpr std::uint16_t kPort = 9999;

void LoopbackUp() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ioctl(fd, SIOCGIFFLAGS, &ifr);
  ifr.ifr_flags |= IFF_UP;
  ioctl(fd, SIOCSIFFLAGS, &ifr);
  close(fd);
}

[[noreturn]] void Sender() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kPort);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  char payload[64] = {};
  std::vector<iovec> iov(64, iovec{payload, sizeof payload});
  std::vector<mmsghdr> msgs(64);
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  for (;;) sendmmsg(fd, msgs.data(), static_cast<unsigned>(msgs.size()), 0);
}

struct Result {
  std::uint64_t packets = 0;
  std::uint64_t sends = 0;
  double seconds = 0;
};

Result Run(bool batched, double seconds) {
  QueueOptions o;
  o.queue_num = 0;
  o.fail_open = false;
  o.receive_buffer_bytes = 8 << 20;
  o.batch_size = 64;
  auto socket = QueueSocket::Open(o);
  VerdictBatcher batcher(0, 64 * 1024, 1024);
  std::vector<std::uint8_t> single(MaxVerdictMessageSize(0));
  Result r;
  ReceiveBatch batch;
  pid_t sender = fork();
  if (sender == 0) Sender();
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    const ReceiveStatus st = socket->Receive(batch, true, 100);
    if (st != ReceiveStatus::kOk) continue;
    for (const Datagram& d : batch.datagrams) {
      ParseDatagram(d.bytes, [&](const ParseResult& pr, const PacketView&) {
        if (!pr.has_id) return;
        ++r.packets;
        if (batched) {
          if (batcher.Add(pr.id, Verdict::Accept()) == AddStatus::kNeedsFlush) {
            batcher.Flush(*socket);
            batcher.Add(pr.id, Verdict::Accept());
          }
        } else {
          const std::size_t n = EncodeVerdict(single, 0, pr.id, Verdict::Accept(), 0);
          socket->Send(std::span<const std::uint8_t>(single.data(), n));
          ++r.sends;
        }
      });
    }
    if (batched) batcher.Flush(*socket);
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  kill(sender, SIGKILL);
  waitpid(sender, nullptr, 0);
  if (batched) {
    batcher.Flush(*socket);
    r.sends = batcher.stats().sends;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  if (geteuid() != 0) {
    std::puts("queue_pps_probe: needs root");
    return 77;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("unshare");
    return 1;
  }
  LoopbackUp();
  if (std::system("iptables -w -A OUTPUT -o lo -p udp --dport 9999 -j NFQUEUE --queue-num 0") != 0) {
    return 1;
  }
  // A sink that is never read: accepted packets end in its (full) buffer.
  int sink = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kPort);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(sink, reinterpret_cast<sockaddr*>(&a), sizeof a);
  for (bool batched : {true, false, true, false}) {
    const Result r = Run(batched, seconds);
    std::printf("%-28s %10.0f packets/s  %6.3f sends/packet  (%llu packets in %.2f s)\n",
                batched ? "batched verdicts:" : "one verdict per packet:",
                static_cast<double>(r.packets) / r.seconds,
                r.packets ? static_cast<double>(r.sends) / static_cast<double>(r.packets) : 0.0,
                static_cast<unsigned long long>(r.packets), r.seconds);
  }
  return 0;
}
