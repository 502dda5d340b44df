#include "netns.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace verdictd::queueio::testing {

std::string KernelTestsUnavailable() {
  if (geteuid() != 0) return "needs root: binds NFQUEUE queues in its own network namespace";
  if (Run("command -v iptables >/dev/null 2>&1") != 0) return "needs iptables";
  return {};
}

std::string EnterFreshNetns() {
  if (unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "socket";
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
    close(fd);
    return "SIOCGIFFLAGS lo";
  }
  ifr.ifr_flags |= IFF_UP;
  int rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
  close(fd);
  if (rc != 0) return "SIOCSIFFLAGS lo";
  return {};
}

int Run(const std::string& command) {
  int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

int UdpReceiver(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendUdp(std::uint16_t port, int count, std::size_t size) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  // Queued packets stay charged to the sending socket until their verdict:
  // room for many of them, or the sender blocks before the test answers.
  int big = 32 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<char> payload(size, 'x');
  for (int i = 0; i < count; ++i) {
    sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  close(fd);
}

int DrainUdp(int fd, int wait_ms) {
  int count = 0;
  char buf[70000];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, count == 0 ? wait_ms : 50) <= 0) break;
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) >= 0) ++count;
  }
  return count;
}

}  // namespace verdictd::queueio::testing
