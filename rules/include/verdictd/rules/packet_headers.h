// Reads the IPv4/IPv6 and transport headers of a queued packet into the
// fields the rule engine matches on.
//
// Pure function over a byte span: noexcept, no allocation, safe on any input.
// Truncated captures are fine as long as the headers fit; the L4 payload the
// content scan sees is whatever part of it was captured.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace verdictd::rules {

enum class HeaderStatus : std::uint8_t {
  kOk,
  kFragment,       // a non-first fragment: L3 fields only, no ports/flags/ICMP
  kTruncated,      // the capture ends inside the IP or transport header
  kBadLength,      // impossible lengths (header longer than the packet, ...)
  kUnknownFamily,  // not IPv4 or IPv6
};
const char* HeaderStatusName(HeaderStatus status) noexcept;

struct PacketFields {
  std::uint8_t family = 0;    // 4 or 6
  std::uint8_t protocol = 0;  // transport protocol (after IPv6 extension headers)
  bool has_ports = false;     // TCP, UDP, UDP-Lite, SCTP, DCCP (not for fragments)
  bool has_tcp_flags = false;
  bool has_icmp = false;      // ICMP for IPv4, ICMPv6 for IPv6
  std::uint8_t tcp_flags = 0;
  std::uint8_t icmp_type = 0;
  std::uint8_t icmp_code = 0;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  // Network byte order; IPv4 uses the first 4 bytes.
  std::array<std::uint8_t, 16> src{};
  std::array<std::uint8_t, 16> dst{};
  // Where the transport payload starts in the captured bytes, and how many of
  // its bytes were captured (bounded by the IP length).
  std::uint32_t payload_offset = 0;
  std::uint32_t payload_length = 0;
};

// `bytes` starts at the network header.
HeaderStatus ParseHeaders(std::span<const std::uint8_t> bytes, PacketFields& out) noexcept;

}  // namespace verdictd::rules
