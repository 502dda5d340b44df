#include "verdictd/service/notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace verdictd::service {
namespace {

// A unix datagram socket standing in for systemd, named in NOTIFY_SOCKET for
// the lifetime of the object.
class FakeManager {
 public:
  FakeManager() {
    char dir[] = "/tmp/verdictd-notify-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/notify.sock";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path_.c_str(), path_.size());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~FakeManager() {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  // The next message, "" when none is waiting.
  std::string Next() {
    char buffer[4096];
    const ssize_t n = recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

TEST(Notifier, does_nothing_without_notify_socket) {
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "1000000", 1);
  Notifier notifier;
  EXPECT_FALSE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_usec(), 0u);
  notifier.Ready("x");
  notifier.WatchdogPing();
  EXPECT_EQ(notifier.sent(), 0u);
  unsetenv("WATCHDOG_USEC");
}

TEST(Notifier, sends_ready_reloading_status_stopping_in_order) {
  FakeManager manager;
  Notifier notifier;
  ASSERT_TRUE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_usec(), 0u);
  notifier.Ready("queue 0 bound, 1 worker, generation 1, 0 verdicts");
  notifier.Status("queue 0 bound, 1 worker, generation 1, 0 verdicts");  // unchanged: not sent
  notifier.Status("queue 0 bound, 1 worker, generation 1, 5 verdicts");
  notifier.Reloading();
  notifier.WatchdogPing();  // no watchdog asked for: not sent
  notifier.Stopping();
  EXPECT_EQ(manager.Next(), "READY=1\nSTATUS=queue 0 bound, 1 worker, generation 1, 0 verdicts");
  EXPECT_EQ(manager.Next(), "STATUS=queue 0 bound, 1 worker, generation 1, 5 verdicts");
  EXPECT_TRUE(manager.Next().starts_with("RELOADING=1\nMONOTONIC_USEC="));
  EXPECT_EQ(manager.Next(), "STOPPING=1\nSTATUS=stopping: draining queued packets");
  EXPECT_EQ(manager.Next(), "");
  EXPECT_EQ(notifier.sent(), 4u);
}

TEST(Notifier, pings_the_watchdog_only_for_its_own_pid) {
  FakeManager manager;
  setenv("WATCHDOG_USEC", "250000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  Notifier mine;
  EXPECT_EQ(mine.watchdog_usec(), 250000u);
  mine.WatchdogPing();
  EXPECT_EQ(manager.Next(), "WATCHDOG=1");
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  Notifier other;
  EXPECT_EQ(other.watchdog_usec(), 0u);
  other.WatchdogPing();
  EXPECT_EQ(manager.Next(), "");
}

}  // namespace
}  // namespace verdictd::service
