// udpecho: sends every UDP datagram it receives back to its sender.
// The far end of udpprobe's round trips. Runs until SIGTERM/SIGINT or
// --duration; prints one JSON object with the count.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tool_common.h"

namespace {

constexpr const char* kUsage =
    "usage: udpecho --port N [--bind IP] [--duration SECONDS (0 = until signal)] [--cpu N]\n"
    "               [--ready-file PATH]\n";


}  // namespace

int main(int argc, char** argv) {
  tools::Flags flags(argc, argv, kUsage);
  const int port = static_cast<int>(flags.Num("port", 0));
  const std::string bind_ip = flags.Str("bind", "0.0.0.0");
  const double duration = flags.Num("duration", 0);
  const int cpu_flag = static_cast<int>(flags.Num("cpu", -1));
  const std::string ready_file = flags.Str("ready-file", "");
  flags.CheckAllUsed();
  if (port <= 0 || port > 65535) flags.Die("--port is required");

  const int cpu = tools::PinToCpu(cpu_flag);
  tools::InstallStopHandlers(/*with_alarm=*/true);
  if (duration > 0) alarm(static_cast<unsigned>(duration + 0.999));

  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("socket");
    return 1;
  }
  if (!tools::BindUdp(fd, bind_ip, port)) return 1;
  tools::TouchReadyFile(ready_file);

  std::uint64_t echoed = 0;
  std::uint8_t buffer[65536];
  while (!tools::g_stop) {
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = recvfrom(fd, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from),
                               &from_len);
    if (n < 0) continue;  // EINTR: the loop condition decides
    if (sendto(fd, buffer, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from),
               from_len) == n) {
      ++echoed;
    }
  }
  std::printf("{\"tool\": \"udpecho\", \"cpu\": %d, \"echoed\": %llu}\n", cpu,
              static_cast<unsigned long long>(echoed));
  close(fd);
  return 0;
}
