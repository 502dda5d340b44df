// Counts heap allocations made through the global operator new of the
// benchmark binary that links verdictd_bench_support.
//
// The counters are process-wide relaxed atomics: exact for single-threaded
// benchmarks, approximate (but never lost) across threads. Reading them does
// not allocate. Allocations by malloc() directly (C libraries) are not seen.
#pragma once

#include <cstdint>

namespace verdictd::bench {

struct AllocationStats {
  std::uint64_t allocations = 0;    // calls to any operator new
  std::uint64_t deallocations = 0;  // calls to any operator delete with a non-null pointer
  std::uint64_t bytes = 0;          // bytes requested from operator new
};

// Totals since the process started.
AllocationStats AllocationTotals() noexcept;

// Allocations made between construction and Delta(); e.g. around a steady
// state benchmark loop.
class AllocationScope {
 public:
  AllocationScope() noexcept : start_(AllocationTotals()) {}
  AllocationStats Delta() const noexcept {
    const AllocationStats now = AllocationTotals();
    return {now.allocations - start_.allocations, now.deallocations - start_.deallocations,
            now.bytes - start_.bytes};
  }

 private:
  AllocationStats start_;
};

}  // namespace verdictd::bench
