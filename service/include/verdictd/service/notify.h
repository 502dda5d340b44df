// systemd's service notification protocol (sd-daemon): readiness, reloads,
// stopping, a status line and watchdog pings, sent through libsystemd's
// sd_notify(). What the daemon tells systemd:
//   READY=1       once every queue is bound and its worker is in its receive loop;
//   RELOADING=1   when a reload starts (SIGHUP or `verdictd ctl reload`),
//                 then READY=1 when it has been applied or refused;
//   STOPPING=1    when the drain starts;
//   STATUS=...    a one-line summary of the queues, refreshed as it changes;
//   WATCHDOG=1    while every worker makes progress (service/watchdog.h).
//
// Without NOTIFY_SOCKET in the environment (not started by systemd with
// Type=notify), enabled() is false and every call returns at once without a
// system call. Thread-safe (the signal loop and the control socket's reloads
// both send; an internal mutex); never on the packet path.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace verdictd::service {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET, and WATCHDOG_USEC / WATCHDOG_PID through
  // sd_watchdog_enabled(), once. The environment is left as it is.
  Notifier();

  bool enabled() const noexcept { return enabled_; }
  // The watchdog interval systemd asked for (WatchdogSec=), 0 when none.
  std::uint64_t watchdog_usec() const noexcept { return watchdog_usec_; }

  void Ready(const std::string& status);
  void Reloading();
  void Stopping();
  // Upgrade: the service's main process is `pid` from now on (sent by the
  // old main process, which NotifyAccess=main allows, before the new one
  // speaks to the manager).
  void MainPid(long pid);
  // Sends STATUS= only when it differs from the last one sent.
  void Status(const std::string& status);
  void WatchdogPing();

  // Messages sent (for the log at stop and the tests' cross-check).
  std::uint64_t sent() const noexcept { return sent_.load(std::memory_order_relaxed); }

 private:
  void Send(const std::string& message);  // mutex_ held

  bool enabled_ = false;
  std::uint64_t watchdog_usec_ = 0;
  std::mutex mutex_;
  std::string last_status_;
  std::atomic<std::uint64_t> sent_{0};
  bool failure_logged_ = false;
};

}  // namespace verdictd::service
