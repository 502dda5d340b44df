// The state behind one struct ipq_handle: a queueio QueueSocket bound to one
// NFQUEUE queue, a receive batch handed out one message per Read(), and a
// VerdictBatcher that coalesces the program's verdicts.
//
// The promise to the program is the old one-packet-per-call API; underneath,
// Read() receives up to Settings::batch_size datagrams per system call and
// verdicts travel together. Verdicts are sent before any wait, and as soon
// as the program has been given every packet received so far, so no verdict
// waits while the program blocks. Every packet handed out is recorded with
// VerdictBatcher::Defer() until its verdict comes, so a batch verdict never
// covers a packet the program still holds.
//
// Read(), SetVerdict(): no allocation per packet. Errors go through
// SetError() (ipq_errno). One thread reads; verdicts may come from any
// thread (as the original allowed: its ipq_set_verdict() was one sendmsg):
// those of the reading thread go through the batcher, those of other
// threads are sent at once as single messages, touching nothing the reader
// uses. The deferred entries of such packets stay, which only stops batching.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "interface_cache.hh"
#include "settings.hh"
#include "verdictd/queueio/queue_socket.h"
#include "verdictd/queueio/verdict.h"
#include "verdictd/queueio/verdict_batcher.h"

namespace verdictd::libipq {

// What the library counted, for tests and diagnostics.
struct HandleStats {
  std::uint64_t packets = 0;           // packet records handed out
  std::uint64_t errors = 0;            // NLMSG_ERROR records handed out
  std::uint64_t library_verdicts = 0;  // packets the program could not be shown (see ipq_read)
  std::uint64_t enobufs = 0;           // receive overruns survived
  std::uint64_t receive_calls = 0;     // receive system calls
  std::uint64_t coalesce_pauses = 0;
};

class Handle {
 public:
  Handle(std::uint8_t family, const Settings& settings);
  ~Handle();
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  int SetMode(std::uint8_t mode, std::size_t range) noexcept;
  long Read(std::span<std::uint8_t> out, int timeout_us) noexcept;
  int SetVerdict(unsigned long id, unsigned int verdict,
                 std::span<const std::uint8_t> data) noexcept;
  // Sends pending verdicts and unbinds (also done by the destructor).
  void Close() noexcept;

  const HandleStats& stats() const noexcept { return stats_; }

 private:
  bool Bind(std::uint8_t mode, std::size_t range) noexcept;
  bool Flush() noexcept;
  int SendDirect(std::uint32_t id, const queueio::Verdict& verdict) noexcept;
  bool Record(std::uint32_t id, const queueio::Verdict& verdict) noexcept;
  void LibraryVerdict(std::uint32_t id) noexcept;
  bool HasUnread() const noexcept;
  // One receive round: kOk (messages to hand out), or what Read() returns.
  enum class Wait : std::uint8_t { kGot, kTimeout, kFailed };
  Wait Receive(int timeout_us, std::uint64_t deadline_ns) noexcept;
  void Coalesce(int timeout_us, std::uint64_t deadline_ns) noexcept;
  void Received() noexcept;       // a new batch arrived
  std::string QueueName() const;  // error paths only

  const std::uint8_t family_;
  const Settings settings_;
  std::unique_ptr<queueio::QueueSocket> socket_;
  std::unique_ptr<queueio::VerdictBatcher> batcher_;
  std::uint8_t mode_ = 0;
  std::uint32_t range_ = 0;

  std::atomic<pthread_t> reader_{};  // the thread of the last Read()
  queueio::ReceiveBatch batch_;
  std::size_t datagram_ = 0;  // next datagram of batch_ to read
  std::size_t offset_ = 0;    // next message within it
  std::int64_t receipt_time_ns_ = 0;
  InterfaceCache interfaces_;

  // Arrival rate over windows of >= 20 ms, for receive coalescing.
  std::uint64_t window_start_ns_ = 0;
  std::uint64_t window_packets_ = 0;
  std::uint64_t rate_pps_ = 0;

  HandleStats stats_;
};

}  // namespace verdictd::libipq

// The opaque handle of the C API.
struct ipq_handle {
  explicit ipq_handle(std::uint8_t family, const verdictd::libipq::Settings& settings)
      : impl(family, settings) {}
  verdictd::libipq::Handle impl;
};
