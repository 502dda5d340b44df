// udpgen: UDP traffic generator for the load test.
//
// Sends fixed-size datagrams to one destination from many flows: every
// source address in --src times --flows-per-src source ports, each flow its
// own connected socket. Batches go out with sendmmsg, flows in turn. With
// --rate 0 it sends as fast as its CPU allows; with --rate N it paces to N
// datagrams per second (sleeping between batches, catching up when late).
// Prints one JSON object with what it sent.
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tool_common.h"

namespace {

constexpr const char* kUsage =
    "usage: udpgen --dst IP --port N [--src IP,IP,...] [--flows-per-src N] [--size BYTES]\n"
    "              [--rate PPS (0 = max)] [--duration SECONDS] [--cpu N] [--batch N]\n";


struct Flow {
  int fd = -1;
  std::string source;
  std::uint64_t sent = 0;
};

}  // namespace

int main(int argc, char** argv) {
  tools::Flags flags(argc, argv, kUsage);
  const std::string dst = flags.Str("dst", "");
  const int port = static_cast<int>(flags.Num("port", 0));
  const auto sources = tools::SplitList(flags.Str("src", ""));
  const int flows_per_src = static_cast<int>(flags.Num("flows-per-src", 1));
  const std::size_t size = static_cast<std::size_t>(flags.Num("size", 64));
  const double rate = flags.Num("rate", 0);
  const double duration = flags.Num("duration", 5);
  const int cpu_flag = static_cast<int>(flags.Num("cpu", -1));
  const std::size_t batch = static_cast<std::size_t>(flags.Num("batch", 32));
  flags.CheckAllUsed();
  if (dst.empty() || port <= 0 || port > 65535) flags.Die("--dst and --port are required");
  if (size < 16 || size > 65000) flags.Die("--size must be 16..65000");
  if (batch < 1 || batch > 1024) flags.Die("--batch must be 1..1024");
  if (flows_per_src < 1) flags.Die("--flows-per-src must be >= 1");

  const int cpu = tools::PinToCpu(cpu_flag);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // precise pacing sleeps
  tools::InstallStopHandlers();

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr = tools::ParseIpv4(dst);

  std::vector<Flow> flows;
  const std::vector<std::string> source_list =
      sources.empty() ? std::vector<std::string>{""} : sources;
  for (const auto& source : source_list) {
    for (int i = 0; i < flows_per_src; ++i) {
      Flow flow;
      flow.source = source;
      flow.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (flow.fd < 0) {
        std::perror("socket");
        return 1;
      }
      int sndbuf = 4 << 20;
      setsockopt(flow.fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
      if (!source.empty()) {
        sockaddr_in from{};
        from.sin_family = AF_INET;
        from.sin_addr = tools::ParseIpv4(source);
        if (bind(flow.fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
          std::fprintf(stderr, "error: bind to %s: %s\n", source.c_str(), std::strerror(errno));
          return 1;
        }
      }
      if (connect(flow.fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        std::fprintf(stderr, "error: connect to %s:%d: %s\n", dst.c_str(), port,
                     std::strerror(errno));
        return 1;
      }
      flows.push_back(flow);
    }
  }

  // One payload buffer shared by every datagram of a batch: the path, not
  // the content, is what is measured.
  std::vector<std::uint8_t> payload(size, 0x5a);
  std::vector<iovec> iovs(batch);
  std::vector<mmsghdr> messages(batch);
  for (std::size_t i = 0; i < batch; ++i) {
    iovs[i].iov_base = payload.data();
    iovs[i].iov_len = payload.size();
    messages[i] = {};
    messages[i].msg_hdr.msg_iov = &iovs[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }

  std::uint64_t sent = 0, send_calls = 0, send_errors = 0, would_block = 0, no_buffer = 0;
  const std::int64_t start = tools::NowNs();
  const std::int64_t end = start + static_cast<std::int64_t>(duration * 1e9);
  std::size_t next_flow = 0;
  std::int64_t now = start;
  while (!tools::g_stop && (now = tools::NowNs()) < end) {
    std::size_t count = batch;
    if (rate > 0) {
      const auto due = static_cast<std::uint64_t>(static_cast<double>(now - start) * rate / 1e9);
      if (sent >= due) {
        // Ahead of schedule: sleep until one more batch is due (or the end).
        const auto next_due = static_cast<std::int64_t>(
            start + static_cast<double>(sent + std::min<std::size_t>(batch, 8)) * 1e9 / rate);
        tools::SleepUntilNs(std::min(next_due, end));
        continue;
      }
      count = static_cast<std::size_t>(std::min<std::uint64_t>(batch, due - sent));
    }
    Flow& flow = flows[next_flow];
    next_flow = (next_flow + 1) % flows.size();
    const int n = sendmmsg(flow.fd, messages.data(), static_cast<unsigned>(count), 0);
    ++send_calls;
    if (n < 0) {
      ++send_errors;
      if (errno == EAGAIN) ++would_block;
      if (errno == ENOBUFS) ++no_buffer;
      continue;
    }
    flow.sent += static_cast<std::uint64_t>(n);
    sent += static_cast<std::uint64_t>(n);
  }
  const double elapsed = static_cast<double>(tools::NowNs() - start) / 1e9;

  std::printf("{\"tool\": \"udpgen\", \"cpu\": %d, \"sent\": %llu, \"seconds\": %.6f, "
              "\"offered_pps\": %.1f, \"target_pps\": %.1f, \"payload_bytes\": %zu, "
              "\"flows\": %zu, \"send_calls\": %llu, \"send_errors\": %llu, "
              "\"eagain\": %llu, \"enobufs\": %llu, \"per_source\": {",
              cpu, static_cast<unsigned long long>(sent), elapsed,
              elapsed > 0 ? static_cast<double>(sent) / elapsed : 0.0, rate, size, flows.size(),
              static_cast<unsigned long long>(send_calls),
              static_cast<unsigned long long>(send_errors),
              static_cast<unsigned long long>(would_block),
              static_cast<unsigned long long>(no_buffer));
  bool first = true;
  for (const auto& source : source_list) {
    std::uint64_t total = 0;
    for (const auto& flow : flows) {
      if (flow.source == source) total += flow.sent;
    }
    std::printf("%s\"%s\": %llu", first ? "" : ", ", source.empty() ? "any" : source.c_str(),
                static_cast<unsigned long long>(total));
    first = false;
  }
  std::printf("}}\n");
  for (auto& flow : flows) close(flow.fd);
  return 0;
}
