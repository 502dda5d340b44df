#include "verdictd/service/signals.h"

#include <pthread.h>

#include <cerrno>
#include <ctime>

namespace verdictd::service {

SignalWaiter::SignalWaiter(std::initializer_list<int> signals) {
  sigemptyset(&set_);
  for (int signal : signals) sigaddset(&set_, signal);
  pthread_sigmask(SIG_BLOCK, &set_, &previous_);
}

SignalWaiter::~SignalWaiter() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

int SignalWaiter::Wait(int timeout_ms) noexcept {
  for (;;) {
    int signal = 0;
    if (timeout_ms < 0) {
      signal = sigwaitinfo(&set_, nullptr);
    } else {
      timespec timeout{timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * 1'000'000};
      signal = sigtimedwait(&set_, nullptr, &timeout);
    }
    if (signal > 0) return signal;
    if (errno == EAGAIN) return 0;
    // EINTR (a signal outside the set, e.g. a debugger's): wait again.
  }
}

}  // namespace verdictd::service
