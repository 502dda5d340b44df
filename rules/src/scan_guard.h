#pragma once
// Keeps content scans from reading past a mapped page.
//
// Hyperscan 5.4's AVX-512 VBMI code, which Debian 12's libhs5 picks on CPUs
// that have it, reads a little past the end of the bytes it is given. A
// guard-page probe over 1.5 million random payloads (lengths 0-199, the rule
// set of fuzz/packet_fuzz.cc) faulted with 0 or 1 readable bytes after the
// payload and never with 2. The read faults only when it crosses into an
// unmapped page, so a payload that ends less than kScanSlack bytes before a
// 4 KiB boundary is scanned from a copy; every other payload is scanned where
// it lies. kScanSlack is one whole vector, far more than the probe needed.
// Larger pages are multiples of 4 KiB, so the test holds for them too.
#include <cstddef>
#include <cstdint>

namespace verdictd::rules {

inline constexpr std::size_t kScanSlack = 64;
inline constexpr std::uintptr_t kScanPageSize = 4096;
// The longest payload ParseHeaders can report: the IP length fields are
// 16 bits, so a transport payload never exceeds 65535 bytes.
inline constexpr std::size_t kMaxScanBytes = 65535;

// True when the kScanSlack bytes after [data, data + length) may lie on
// another page than the payload's last byte.
inline bool ScanMayCrossPage(const std::uint8_t* data, std::size_t length) noexcept {
  const std::uintptr_t end = reinterpret_cast<std::uintptr_t>(data) + length;
  return ((end - 1) ^ (end + kScanSlack - 1)) >= kScanPageSize;
}

}  // namespace verdictd::rules
