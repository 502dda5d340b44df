// Synchronous signal handling for the control thread: no work ever runs in
// an asynchronous signal handler.
//
// The constructor blocks the given signals in the calling thread; threads
// started afterwards inherit the mask, so the signals stay pending until the
// control thread collects them with Wait(). Construct it before any other
// thread exists. Not thread-safe; one instance per process.
#pragma once

#include <csignal>
#include <initializer_list>

namespace verdictd::service {

class SignalWaiter {
 public:
  explicit SignalWaiter(std::initializer_list<int> signals);
  ~SignalWaiter();  // restores the previous mask of the calling thread
  SignalWaiter(const SignalWaiter&) = delete;
  SignalWaiter& operator=(const SignalWaiter&) = delete;

  // Waits up to `timeout_ms` (-1: forever) for one of the signals; returns its
  // number, or 0 when the time passed.
  int Wait(int timeout_ms = -1) noexcept;

 private:
  sigset_t set_;
  sigset_t previous_;
};

}  // namespace verdictd::service
