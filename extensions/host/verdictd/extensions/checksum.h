// Checksum repair for rewritten packets (the extension host's ALTERED path
// and the repair_checksums() host service).
//
// After a rewrite the kernel takes the verdict's payload as it is and marks
// the skb CHECKSUM_NONE (nfqnl_mangle), also for packets that were queued
// with NFQA_SKB_CSUMNOTREADY (CHECKSUM_PARTIAL: the L4 field held only the
// pseudo-header sum, to be finished by offload). So the repair always writes
// complete checksums, never a partial one.
//
// Pure functions: noexcept, no allocation, any thread.
#pragma once

#include <cstdint>
#include <span>

namespace verdictd::extensions {

enum class RepairStatus : std::uint8_t {
  kRepaired,     // lengths, IP header and L4 checksum fixed
  kHeaderOnly,   // IP header and lengths fixed; L4 left (fragment, unknown protocol)
  kUnsupported,  // not an IPv4/IPv6 packet this can parse: unchanged
};

// Fixes, in place: IPv4 total length and header checksum, IPv6 payload
// length, UDP length, and the TCP, UDP, ICMP or ICMPv6 checksum.
RepairStatus RepairChecksums(std::span<std::uint8_t> packet) noexcept;

// The Internet checksum (RFC 1071) of `bytes` added to `initial` (a partial
// 32-bit sum), folded and complemented.
std::uint16_t InternetChecksum(std::span<const std::uint8_t> bytes,
                               std::uint32_t initial = 0) noexcept;

}  // namespace verdictd::extensions
