#include "verdictd/service/control.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <sstream>
#include <vector>

namespace verdictd::service {
namespace {

std::string SocketPath(const char* name) {
  return (std::filesystem::temp_directory_path() /
          ("verdictd-" + std::string(name) + "-" + std::to_string(::getpid()) + ".sock"))
      .string();
}

// Echoes known commands; the real handler is tested through the integration test.
std::string Echo(std::string_view command) {
  if (command == "boom") throw std::runtime_error("handler failed");
  if (command == "reload" || command == "status") return "ok " + std::string(command) + "\n";
  return "error: unknown command\n";
}

// Sends raw bytes (no newline added) and returns the whole reply.
std::string Raw(const std::string& path, std::string_view bytes, bool close_write = true) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  if (!bytes.empty()) ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  if (close_write) ::shutdown(fd, SHUT_WR);
  std::string reply;
  char buffer[512];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return reply;
}

TEST(ControlServer, serves_commands_to_the_client) {
  metrics::ServiceCounters counters;
  const std::string path = SocketPath("ctl-a");
  ControlServer server(path, Echo, counters);
  std::ostringstream out, err;
  EXPECT_EQ(SendControlCommand(path, "reload", out, err), 0);
  EXPECT_EQ(out.str(), "ok reload\n");
  out.str("");
  EXPECT_EQ(SendControlCommand(path, "frobnicate", out, err), 1);
  EXPECT_EQ(out.str(), "error: unknown command\n");
  EXPECT_EQ(err.str(), "");
  EXPECT_EQ(counters.control_requests.value(), 2u);
  EXPECT_EQ(counters.control_errors.value(), 1u);
}

TEST(ControlServer, socket_is_private_to_its_owner) {
  metrics::ServiceCounters counters;
  const std::string path = SocketPath("ctl-mode");
  ControlServer server(path, Echo, counters);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST(ControlServer, malformed_input_gets_an_error_and_the_server_keeps_serving) {
  metrics::ServiceCounters counters;
  const std::string path = SocketPath("ctl-bad");
  ControlServer server(path, Echo, counters);
  EXPECT_EQ(Raw(path, std::string(1000, 'x')), "error: command longer than 256 bytes\n");
  EXPECT_EQ(Raw(path, std::string("\x01\xff\x00junk\n", 8)),
            "error: command contains non-printable bytes\n");
  EXPECT_EQ(Raw(path, "boom\n"), "error: handler failed\n");
  EXPECT_EQ(Raw(path, ""), "error: unknown command\n");  // empty command
  // A client that connects and sends nothing is cut off after a second.
  EXPECT_EQ(Raw(path, "", /*close_write=*/false), "error: no complete command within 1 s\n");
  EXPECT_EQ(Raw(path, "status\r\n"), "ok status\n");
  EXPECT_EQ(counters.control_requests.value(), 6u);
  EXPECT_EQ(counters.control_errors.value(), 5u);
}

int ConnectOnly(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return fd;
}

std::string ReadAll(int fd) {
  std::string reply;
  char buffer[512];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return reply;
}

TEST(ControlServer, a_silent_or_dribbling_client_delays_no_other) {
  metrics::ServiceCounters counters;
  const std::string path = SocketPath("ctl-slow");
  ControlServer server(path, Echo, counters);
  const int silent = ConnectOnly(path);
  const int dribbling = ConnectOnly(path);
  ASSERT_EQ(::send(dribbling, "st", 2, MSG_NOSIGNAL), 2);
  // Served while both still wait for their deadline: nothing for them yet.
  EXPECT_EQ(Raw(path, "status\n"), "ok status\n");
  pollfd waiting[2] = {{silent, POLLIN, 0}, {dribbling, POLLIN, 0}};
  EXPECT_EQ(::poll(waiting, 2, 0), 0);
  ASSERT_EQ(::send(dribbling, "a", 1, MSG_NOSIGNAL), 1);
  // One second in all, however the bytes trickle in.
  EXPECT_EQ(ReadAll(silent), "error: no complete command within 1 s\n");
  EXPECT_EQ(ReadAll(dribbling), "error: no complete command within 1 s\n");
  EXPECT_EQ(counters.control_requests.value(), 3u);
  EXPECT_EQ(counters.control_errors.value(), 2u);
}

TEST(ControlServer, connections_past_the_limit_get_busy_at_once) {
  metrics::ServiceCounters counters;
  const std::string path = SocketPath("ctl-busy");
  ControlServer server(path, Echo, counters);
  std::vector<int> waiting;
  for (int i = 0; i < 32; ++i) waiting.push_back(ConnectOnly(path));
  // Accepted in order, so the 33rd finds all 32 slots taken.
  EXPECT_EQ(Raw(path, "status\n"),
            "error: busy: 32 control connections are waiting for their command; try again\n");
  for (const int fd : waiting) EXPECT_EQ(ReadAll(fd), "error: no complete command within 1 s\n");
  EXPECT_EQ(Raw(path, "status\n"), "ok status\n");
}

TEST(ControlServer, replaces_a_stale_socket_and_refuses_a_live_one) {
  metrics::ServiceCounters counters;
  const std::string path = SocketPath("ctl-stale");
  {
    // A socket file nobody listens on, as a crashed run leaves behind.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.data(), path.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ::close(fd);
  }
  ControlServer server(path, Echo, counters);
  EXPECT_THROW(ControlServer(path, Echo, counters), std::runtime_error);
  std::ostringstream out, err;
  EXPECT_EQ(SendControlCommand(path, "status", out, err), 0);
}

TEST(ControlServer, daemon_runs_on_without_a_socket_it_cannot_create) {
  metrics::ServiceCounters counters;
  const std::string path = SocketPath("ctl-start");
  auto first = StartControlServer(path, Echo, counters);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(StartControlServer(path, Echo, counters), nullptr);  // held by `first`
  EXPECT_EQ(StartControlServer("/proc/verdictd-no-such-dir/ctl.sock", Echo, counters), nullptr);
}

TEST(ControlServer, removes_its_socket_file_when_stopped) {
  metrics::ServiceCounters counters;
  const std::string path = SocketPath("ctl-stop");
  { ControlServer server(path, Echo, counters); }
  EXPECT_FALSE(std::filesystem::exists(path));
  std::ostringstream out, err;
  EXPECT_EQ(SendControlCommand(path, "status", out, err), 1);
  EXPECT_NE(err.str().find("cannot connect to " + path), std::string::npos) << err.str();
}

TEST(ControlServer, refuses_a_path_that_is_not_a_socket) {
  metrics::ServiceCounters counters;
  const std::string path = SocketPath("ctl-file");
  { std::FILE* f = std::fopen(path.c_str(), "w"); std::fclose(f); }
  EXPECT_THROW(ControlServer(path, Echo, counters), std::runtime_error);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace verdictd::service
