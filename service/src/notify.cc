#include "verdictd/service/notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>

#include "verdictd/base/clock.h"

namespace verdictd::service {
namespace {

// MONOTONIC_USEC= wants microseconds.
std::uint64_t MonotonicMicros() { return base::MonotonicNanos() / 1000u; }

}  // namespace

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  if (!enabled_) return;
  std::uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is us.
  if (sd_watchdog_enabled(0, &usec) > 0) watchdog_usec_ = usec;
}

void Notifier::Send(const std::string& message) {
  if (!enabled_) return;
  const int rc = sd_notify(0, message.c_str());
  if (rc > 0) {
    sent_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!failure_logged_) {
    failure_logged_ = true;
    spdlog::warn("systemd notification failed ({}): {}; the service manager may consider "
                 "verdictd not ready or hung (check NOTIFY_SOCKET and the unit's NotifyAccess=)",
                 message.substr(0, message.find('\n')), rc < 0 ? std::strerror(-rc) : "not sent");
  }
}

void Notifier::Ready(const std::string& status) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  last_status_ = status;
  Send("READY=1\nSTATUS=" + status);
}

void Notifier::Reloading() {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  // MONOTONIC_USEC lets Type=notify-reload (systemd 253+) match the reload to
  // its request; older managers ignore it.
  Send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(MonotonicMicros()));
}

void Notifier::MainPid(long pid) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  Send("MAINPID=" + std::to_string(pid) + "\nSTATUS=upgrade: handing the queues to pid " +
       std::to_string(pid));
}

void Notifier::Stopping() {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  Send("STOPPING=1\nSTATUS=stopping: draining queued packets");
}

void Notifier::Status(const std::string& status) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  if (status == last_status_) return;
  last_status_ = status;
  Send("STATUS=" + status);
}

void Notifier::WatchdogPing() {
  if (!enabled_ || watchdog_usec_ == 0) return;
  std::lock_guard lock(mutex_);
  Send("WATCHDOG=1");
}

}  // namespace verdictd::service
