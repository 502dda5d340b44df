// udpsink: counts the UDP datagrams that reach it, per source address.
//
// Receives with recvmmsg on one port until --duration passes, SIGTERM or
// SIGINT arrives, or (with --idle-exit) no datagram came for that long after
// the first one. It waits inside recvmmsg (MSG_WAITFORONE, a 100 ms receive
// timeout to look at the clock), not in poll(): a poll waiter stays on the
// socket's wait queue after it was woken, so every datagram delivered in a
// burst would pay for another wake-up call in the sender's context. Prints one JSON object: total, bytes, per-source counts and
// the time between the first and the last datagram.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tool_common.h"

namespace {

constexpr const char* kUsage =
    "usage: udpsink --port N [--bind IP] [--duration SECONDS (0 = until signal)]\n"
    "               [--idle-exit SECONDS] [--cpu N] [--batch N] [--rcvbuf BYTES]\n"
    "               [--ready-file PATH]\n";


struct SourceCount {
  in_addr_t addr;
  std::uint64_t count;
};

}  // namespace

int main(int argc, char** argv) {
  tools::Flags flags(argc, argv, kUsage);
  const int port = static_cast<int>(flags.Num("port", 0));
  const std::string bind_ip = flags.Str("bind", "0.0.0.0");
  const double duration = flags.Num("duration", 0);
  const double idle_exit = flags.Num("idle-exit", 0);
  const int cpu_flag = static_cast<int>(flags.Num("cpu", -1));
  const std::size_t batch = static_cast<std::size_t>(flags.Num("batch", 64));
  const int rcvbuf = static_cast<int>(flags.Num("rcvbuf", 32 << 20));
  const std::string ready_file = flags.Str("ready-file", "");
  flags.CheckAllUsed();
  if (port <= 0 || port > 65535) flags.Die("--port is required");
  if (batch < 1 || batch > 1024) flags.Die("--batch must be 1..1024");

  const int cpu = tools::PinToCpu(cpu_flag);
  tools::InstallStopHandlers();

  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("socket");
    return 1;
  }
  // A large buffer so the sink itself never becomes the bottleneck it measures.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  timeval wake_every{0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wake_every, sizeof wake_every);
  if (!tools::BindUdp(fd, bind_ip, port)) return 1;
  tools::TouchReadyFile(ready_file);

  constexpr std::size_t kBufferBytes = 2048;  // larger datagrams are counted, truncated
  std::vector<std::uint8_t> buffers(batch * kBufferBytes);
  std::vector<iovec> iovs(batch);
  std::vector<sockaddr_in> names(batch);
  std::vector<mmsghdr> messages(batch);
  std::vector<SourceCount> sources;
  std::uint64_t total = 0, bytes = 0, calls = 0;
  std::int64_t first_ns = 0, last_ns = 0;
  const std::int64_t start = tools::NowNs();
  const std::int64_t end = duration > 0 ? start + static_cast<std::int64_t>(duration * 1e9) : 0;

  while (!tools::g_stop) {
    const std::int64_t now = tools::NowNs();
    if (end != 0 && now >= end) break;
    if (idle_exit > 0 && total > 0 && now - last_ns > static_cast<std::int64_t>(idle_exit * 1e9)) {
      break;
    }
    for (std::size_t i = 0; i < batch; ++i) {
      iovs[i].iov_base = buffers.data() + i * kBufferBytes;
      iovs[i].iov_len = kBufferBytes;
      messages[i] = {};
      messages[i].msg_hdr.msg_iov = &iovs[i];
      messages[i].msg_hdr.msg_iovlen = 1;
      messages[i].msg_hdr.msg_name = &names[i];
      messages[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    const int n = recvmmsg(fd, messages.data(), static_cast<unsigned>(batch), MSG_WAITFORONE,
                           nullptr);
    ++calls;
    if (n <= 0) continue;
    last_ns = tools::NowNs();
    if (total == 0) first_ns = last_ns;
    total += static_cast<std::uint64_t>(n);
    for (int i = 0; i < n; ++i) {
      bytes += messages[i].msg_len;
      const in_addr_t source = names[i].sin_addr.s_addr;
      bool found = false;
      for (auto& entry : sources) {
        if (entry.addr == source) {
          ++entry.count;
          found = true;
          break;
        }
      }
      if (!found) sources.push_back({source, 1});
    }
  }

  std::printf("{\"tool\": \"udpsink\", \"cpu\": %d, \"received\": %llu, \"bytes\": %llu, "
              "\"receive_calls\": %llu, \"active_seconds\": %.6f, \"per_source\": {",
              cpu, static_cast<unsigned long long>(total), static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(calls),
              static_cast<double>(last_ns - first_ns) / 1e9);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    in_addr a{};
    a.s_addr = sources[i].addr;
    std::printf("%s\"%s\": %llu", i == 0 ? "" : ", ", tools::FormatIpv4(a).c_str(),
                static_cast<unsigned long long>(sources[i].count));
  }
  std::printf("}}\n");
  close(fd);
  return 0;
}
