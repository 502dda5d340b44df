// Per-rule match logging: EVE-like JSON lines (timestamp, queue, addresses,
// ports, protocol, rule, action) written by one logging thread.
//
// Workers never block on it: each worker owns a bounded single-producer
// single-consumer ring of fixed-size records; Push() is a few stores and a
// release, and a full ring drops the record (the worker counts it). The
// logging thread drains every ring, formats and writes. Rings are created on
// the control plane (ring()) and live as long as the RuleLog, across reloads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "verdictd/base/false_sharing.h"

namespace verdictd::rules {

struct LogRecord {
  std::int64_t time_ns = 0;  // CLOCK_REALTIME
  std::uint16_t queue = 0;
  std::uint8_t family = 0;
  std::uint8_t protocol = 0;
  bool has_ports = false;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t length = 0;
  std::array<std::uint8_t, 16> src{};
  std::array<std::uint8_t, 16> dst{};
  const char* action = "";  // a string literal
  std::array<char, 64> rule{};  // copied: the rule set may be gone when it is written
};

class LogRing {
 public:
  explicit LogRing(std::size_t capacity);  // rounded up to a power of two
  // Producer (one worker): false when full. noexcept, no allocation.
  bool Push(const LogRecord& record) noexcept;
  // Consumer (the logging thread): calls fn(record) for each pending record.
  template <typename Fn>
  std::size_t Drain(Fn&& fn) {
    const std::uint64_t head = head_.load(std::memory_order_acquire);
    std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    const std::size_t n = static_cast<std::size_t>(head - tail);
    for (; tail != head; ++tail) fn(records_[tail & mask_]);
    tail_.store(tail, std::memory_order_release);
    return n;
  }

 private:
  std::unique_ptr<LogRecord[]> records_;
  std::uint64_t mask_;
  alignas(base::kFalseSharingRange) std::atomic<std::uint64_t> head_{0};
  std::uint64_t cached_tail_ = 0;  // producer's view of tail_
  alignas(base::kFalseSharingRange) std::atomic<std::uint64_t> tail_{0};
};

// Formats one record as a JSON line (no newline).
std::string FormatLogRecord(const LogRecord& record);

class RuleLog {
 public:
  // `path` "-" is stdout; otherwise the file is opened for appending.
  // Throws std::runtime_error naming the file when it cannot be opened.
  RuleLog(const std::string& path, std::size_t ring_capacity);
  ~RuleLog();  // stops the thread after a last drain
  RuleLog(const RuleLog&) = delete;
  RuleLog& operator=(const RuleLog&) = delete;

  // Control plane: the ring of `worker`, created on first use.
  LogRing* ring(std::size_t worker);
  // Starts the logging thread (drains every `period_ms`).
  void Start(int period_ms = 50);
  // Drains every ring now and flushes (tests, replay, shutdown).
  std::size_t DrainOnce();
  std::uint64_t lines_written() const noexcept { return lines_.load(std::memory_order_relaxed); }

 private:
  std::FILE* out_ = nullptr;
  bool owns_out_ = false;
  std::size_t capacity_;
  std::mutex mutex_;
  std::deque<std::unique_ptr<LogRing>> rings_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> lines_{0};
  std::thread thread_;
};

}  // namespace verdictd::rules
