// udpprobe: low-rate UDP round-trip latency probe (the far end runs udpecho).
//
// Sends one datagram at a time, every 1/--rate seconds, and waits up to
// --timeout-ms for its echo before the next. Each probe carries its sequence
// number and send time, so late echoes of earlier probes are recognised and
// not counted as answers. Prints JSON: sent, answered, lost, and the round
// trip in microseconds (min, mean, p50, p90, p99, p99.9, max); --samples PATH
// writes every round trip (one per line, µs) for the distribution chart.
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tool_common.h"

namespace {

constexpr const char* kUsage =
    "usage: udpprobe --dst IP --port N [--src IP] [--count N] [--rate PER_SECOND]\n"
    "                [--size BYTES] [--timeout-ms N] [--cpu N] [--samples PATH]\n";


struct Probe {
  std::uint64_t seq;
  std::int64_t sent_ns;
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank: the smallest sample with at least p% of samples <= it.
  auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

}  // namespace

int main(int argc, char** argv) {
  tools::Flags flags(argc, argv, kUsage);
  const std::string dst = flags.Str("dst", "");
  const int port = static_cast<int>(flags.Num("port", 0));
  const std::string src = flags.Str("src", "");
  const auto count = static_cast<std::uint64_t>(flags.Num("count", 1000));
  const double rate = flags.Num("rate", 200);
  const std::size_t size = static_cast<std::size_t>(flags.Num("size", 64));
  const int timeout_ms = static_cast<int>(flags.Num("timeout-ms", 200));
  const int cpu_flag = static_cast<int>(flags.Num("cpu", -1));
  const std::string samples_path = flags.Str("samples", "");
  flags.CheckAllUsed();
  if (dst.empty() || port <= 0 || port > 65535) flags.Die("--dst and --port are required");
  if (rate <= 0) flags.Die("--rate must be > 0");
  if (size < sizeof(Probe) || size > 65000) flags.Die("--size must be 16..65000");

  const int cpu = tools::PinToCpu(cpu_flag);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  tools::InstallStopHandlers();

  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("socket");
    return 1;
  }
  if (!src.empty()) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr = tools::ParseIpv4(src);
    if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      std::fprintf(stderr, "error: bind to %s: %s\n", src.c_str(), std::strerror(errno));
      return 1;
    }
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr = tools::ParseIpv4(dst);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    std::fprintf(stderr, "error: connect: %s\n", std::strerror(errno));
    return 1;
  }

  std::vector<std::uint8_t> out(size, 0), in(65536);
  std::vector<double> rtts_us;
  rtts_us.reserve(count);
  std::uint64_t sent = 0, late = 0;
  const auto interval_ns = static_cast<std::int64_t>(1e9 / rate);
  const std::int64_t start = tools::NowNs();
  for (std::uint64_t seq = 0; seq < count && !tools::g_stop; ++seq) {
    tools::SleepUntilNs(start + static_cast<std::int64_t>(seq) * interval_ns);
    Probe probe{seq, tools::NowNs()};
    std::memcpy(out.data(), &probe, sizeof probe);
    if (send(fd, out.data(), out.size(), 0) < 0) continue;
    ++sent;
    const std::int64_t deadline = probe.sent_ns + std::int64_t{timeout_ms} * 1000000;
    while (!tools::g_stop) {
      const std::int64_t left_ms = (deadline - tools::NowNs()) / 1000000;
      if (left_ms < 0) break;
      pollfd pfd{fd, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left_ms) + 1) <= 0) break;
      const ssize_t n = recv(fd, in.data(), in.size(), MSG_DONTWAIT);
      const std::int64_t now = tools::NowNs();
      if (n < static_cast<ssize_t>(sizeof(Probe))) continue;
      Probe echo{};
      std::memcpy(&echo, in.data(), sizeof echo);
      if (echo.seq != seq) {
        ++late;  // the echo of an earlier probe that had timed out
        continue;
      }
      rtts_us.push_back(static_cast<double>(now - echo.sent_ns) / 1e3);
      break;
    }
  }

  if (!samples_path.empty()) {
    if (FILE* f = std::fopen(samples_path.c_str(), "w")) {
      for (double rtt : rtts_us) std::fprintf(f, "%.3f\n", rtt);
      std::fclose(f);
    }
  }
  std::vector<double> sorted = rtts_us;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double rtt : sorted) sum += rtt;
  const double mean = sorted.empty() ? 0 : sum / static_cast<double>(sorted.size());
  std::printf("{\"tool\": \"udpprobe\", \"cpu\": %d, \"sent\": %llu, \"answered\": %zu, "
              "\"lost\": %llu, \"late\": %llu, \"rtt_us\": {\"min\": %.3f, \"mean\": %.3f, "
              "\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p99.9\": %.3f, \"max\": %.3f}}\n",
              cpu, static_cast<unsigned long long>(sent), sorted.size(),
              static_cast<unsigned long long>(sent - sorted.size()),
              static_cast<unsigned long long>(late), sorted.empty() ? 0.0 : sorted.front(), mean,
              Percentile(sorted, 50), Percentile(sorted, 90), Percentile(sorted, 99),
              Percentile(sorted, 99.9), sorted.empty() ? 0.0 : sorted.back());
  close(fd);
  return 0;
}
