#include "verdictd/rules/packet_headers.h"

#include <cstring>

namespace verdictd::rules {
namespace {

constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
constexpr std::uint8_t kDccp = 33;
constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kIcmp6 = 58;
constexpr std::uint8_t kSctp = 132;
constexpr std::uint8_t kUdpLite = 136;
constexpr int kMaxExtensionHeaders = 8;

std::uint16_t Load16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// Reads the transport header at bytes[offset, end). `end` is the end of the
// IP packet within the captured bytes (min(captured, IP length)); `ip_end` is
// the IP length, to tell a short capture from a short packet.
HeaderStatus ParseTransport(std::span<const std::uint8_t> bytes, std::uint32_t offset,
                            std::uint32_t end, std::uint32_t ip_end, PacketFields& out) noexcept {
  std::uint32_t header = 0;
  switch (out.protocol) {
    case kTcp: header = 20; break;
    case kUdp:
    case kUdpLite: header = 8; break;
    case kSctp: header = 12; break;
    case kDccp: header = 12; break;
    case kIcmp:
    case kIcmp6:
      if ((out.protocol == kIcmp) != (out.family == 4)) break;
      header = 4;
      break;
    default: break;
  }
  if (header == 0) {
    out.payload_offset = offset;
    out.payload_length = end - offset;
    return HeaderStatus::kOk;
  }
  if (offset + header > ip_end) return HeaderStatus::kBadLength;
  if (offset + header > end) return HeaderStatus::kTruncated;
  const std::uint8_t* p = bytes.data() + offset;
  if (out.protocol == kIcmp || out.protocol == kIcmp6) {
    out.has_icmp = true;
    out.icmp_type = p[0];
    out.icmp_code = p[1];
    header = out.protocol == kIcmp ? 8 : 8;
    if (offset + header > end) header = end - offset;  // echo id/seq need not be captured
  } else {
    out.has_ports = true;
    out.src_port = Load16(p);
    out.dst_port = Load16(p + 2);
    if (out.protocol == kTcp) {
      const std::uint32_t data_offset = static_cast<std::uint32_t>(p[12] >> 4) * 4;
      if (data_offset < 20 || offset + data_offset > ip_end) return HeaderStatus::kBadLength;
      if (offset + data_offset > end) return HeaderStatus::kTruncated;
      header = data_offset;
      out.has_tcp_flags = true;
      out.tcp_flags = p[13];
    }
  }
  out.payload_offset = offset + header;
  out.payload_length = end - (offset + header);
  return HeaderStatus::kOk;
}

HeaderStatus ParseIpv4(std::span<const std::uint8_t> bytes, PacketFields& out) noexcept {
  if (bytes.size() < 20) return HeaderStatus::kTruncated;
  const std::uint8_t* p = bytes.data();
  const std::uint32_t ihl = static_cast<std::uint32_t>(p[0] & 0x0f) * 4;
  const std::uint32_t total = Load16(p + 2);
  if (ihl < 20 || total < ihl) return HeaderStatus::kBadLength;
  if (bytes.size() < ihl) return HeaderStatus::kTruncated;
  out.family = 4;
  out.protocol = p[9];
  std::memcpy(out.src.data(), p + 12, 4);
  std::memcpy(out.dst.data(), p + 16, 4);
  const std::uint32_t end = total < bytes.size() ? total : static_cast<std::uint32_t>(bytes.size());
  const std::uint16_t fragment_offset = Load16(p + 6) & 0x1fff;
  if (fragment_offset != 0) {
    out.payload_offset = ihl;
    out.payload_length = end - ihl;
    return HeaderStatus::kFragment;
  }
  return ParseTransport(bytes, ihl, end, total, out);
}

bool IsExtensionHeader(std::uint8_t next) noexcept {
  return next == 0 || next == 43 || next == 44 || next == 51 || next == 60 || next == 135 ||
         next == 139 || next == 140;
}

HeaderStatus ParseIpv6(std::span<const std::uint8_t> bytes, PacketFields& out) noexcept {
  if (bytes.size() < 40) return HeaderStatus::kTruncated;
  const std::uint8_t* p = bytes.data();
  const std::uint32_t total = 40u + Load16(p + 4);
  out.family = 6;
  std::memcpy(out.src.data(), p + 8, 16);
  std::memcpy(out.dst.data(), p + 24, 16);
  const std::uint32_t end = total < bytes.size() ? total : static_cast<std::uint32_t>(bytes.size());
  std::uint8_t next = p[6];
  std::uint32_t offset = 40;
  bool fragment = false;
  for (int i = 0; IsExtensionHeader(next); ++i) {
    if (i == kMaxExtensionHeaders) return HeaderStatus::kBadLength;
    if (offset + 8 > total) return HeaderStatus::kBadLength;
    if (offset + 8 > end) return HeaderStatus::kTruncated;
    const std::uint8_t* h = p + offset;
    std::uint32_t length = 0;
    if (next == 44) {
      length = 8;
      if ((Load16(h + 2) & 0xfff8) != 0) fragment = true;
    } else if (next == 51) {
      length = (static_cast<std::uint32_t>(h[1]) + 2) * 4;
    } else {
      length = (static_cast<std::uint32_t>(h[1]) + 1) * 8;
    }
    next = h[0];
    offset += length;
    if (offset > total) return HeaderStatus::kBadLength;
    if (fragment) break;
  }
  out.protocol = next;
  if (offset > end) return HeaderStatus::kTruncated;
  if (fragment) {
    out.payload_offset = offset;
    out.payload_length = end - offset;
    return HeaderStatus::kFragment;
  }
  return ParseTransport(bytes, offset, end, total, out);
}

}  // namespace

const char* HeaderStatusName(HeaderStatus status) noexcept {
  switch (status) {
    case HeaderStatus::kOk: return "ok";
    case HeaderStatus::kFragment: return "fragment";
    case HeaderStatus::kTruncated: return "truncated";
    case HeaderStatus::kBadLength: return "bad_length";
    case HeaderStatus::kUnknownFamily: return "unknown_family";
  }
  return "unknown";
}

HeaderStatus ParseHeaders(std::span<const std::uint8_t> bytes, PacketFields& out) noexcept {
  out = PacketFields{};
  if (bytes.empty()) return HeaderStatus::kTruncated;
  switch (bytes[0] >> 4) {
    case 4: return ParseIpv4(bytes, out);
    case 6: return ParseIpv6(bytes, out);
    default: return HeaderStatus::kUnknownFamily;
  }
}

}  // namespace verdictd::rules
