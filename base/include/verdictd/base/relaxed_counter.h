// Counters with one writer and any number of readers: what each worker
// counts on its hot path (metrics, rules, extensions all use these).
//
// Add() is a relaxed load and a relaxed store: on x86 a plain add to memory,
// no lock prefix, no compare-and-swap. Only the owning thread may call Add();
// readers (the scrape) call value() from any thread. Being atomic keeps the
// concurrent read well-defined (and ThreadSanitizer quiet) at no cost.
#pragma once

#include <atomic>
#include <cstdint>

namespace verdictd::base {

class RelaxedCounter {
 public:
  void Add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// The largest value seen so far; same single-writer rule as RelaxedCounter.
class RelaxedMax {
 public:
  void Max(std::uint64_t v) noexcept {
    if (v > value_.load(std::memory_order_relaxed)) value_.store(v, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

}  // namespace verdictd::base
