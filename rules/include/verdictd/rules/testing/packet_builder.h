// Builds IPv4/IPv6 packets (network header first) for the rule tests and the
// benchmark, and PacketViews around them.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <vector>

#include "verdictd/queueio/packet.h"

// Tests name only the PacketSpec fields they care about (designated
// initializers); GCC 12 warns about the rest although they have defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace verdictd::rules::testing {

struct PacketSpec {
  std::string src = "10.0.0.1";
  std::string dst = "10.0.0.2";
  std::uint8_t protocol = 6;
  std::uint16_t src_port = 40000;
  std::uint16_t dst_port = 80;
  std::uint8_t tcp_flags = 0x02;  // SYN
  std::uint8_t icmp_type = 8;
  std::uint8_t icmp_code = 0;
  std::string payload;
  std::uint16_t fragment_offset = 0;  // in 8-byte units; non-zero: non-first fragment
  bool more_fragments = false;
};

inline std::vector<std::uint8_t> BuildPacket(const PacketSpec& s) {
  std::vector<std::uint8_t> l4;
  const bool v6 = s.src.find(':') != std::string::npos;
  if (s.protocol == 6) {
    l4.assign(20, 0);
    l4[0] = s.src_port >> 8; l4[1] = s.src_port & 0xff;
    l4[2] = s.dst_port >> 8; l4[3] = s.dst_port & 0xff;
    l4[12] = 5 << 4;
    l4[13] = s.tcp_flags;
  } else if (s.protocol == 17) {
    l4.assign(8, 0);
    l4[0] = s.src_port >> 8; l4[1] = s.src_port & 0xff;
    l4[2] = s.dst_port >> 8; l4[3] = s.dst_port & 0xff;
    const auto len = static_cast<std::uint16_t>(8 + s.payload.size());
    l4[4] = len >> 8; l4[5] = len & 0xff;
  } else if (s.protocol == 1 || s.protocol == 58) {
    l4.assign(8, 0);
    l4[0] = s.icmp_type;
    l4[1] = s.icmp_code;
  }
  l4.insert(l4.end(), s.payload.begin(), s.payload.end());
  std::vector<std::uint8_t> out;
  if (!v6) {
    out.assign(20, 0);
    out[0] = 0x45;
    const auto total = static_cast<std::uint16_t>(20 + l4.size());
    out[2] = total >> 8; out[3] = total & 0xff;
    const std::uint16_t frag = static_cast<std::uint16_t>((s.more_fragments ? 0x2000 : 0) | s.fragment_offset);
    out[6] = frag >> 8; out[7] = frag & 0xff;
    out[8] = 64;
    out[9] = s.protocol;
    inet_pton(AF_INET, s.src.c_str(), out.data() + 12);
    inet_pton(AF_INET, s.dst.c_str(), out.data() + 16);
  } else {
    out.assign(40, 0);
    out[0] = 0x60;
    std::uint8_t next = s.protocol;
    std::vector<std::uint8_t> ext;
    if (s.fragment_offset != 0 || s.more_fragments) {
      ext.assign(8, 0);
      ext[0] = s.protocol;
      const std::uint16_t frag = static_cast<std::uint16_t>((s.fragment_offset << 3) | (s.more_fragments ? 1 : 0));
      ext[2] = frag >> 8; ext[3] = frag & 0xff;
      next = 44;
    }
    const auto plen = static_cast<std::uint16_t>(ext.size() + l4.size());
    out[4] = plen >> 8; out[5] = plen & 0xff;
    out[6] = next;
    out[7] = 64;
    inet_pton(AF_INET6, s.src.c_str(), out.data() + 8);
    inet_pton(AF_INET6, s.dst.c_str(), out.data() + 24);
    out.insert(out.end(), ext.begin(), ext.end());
  }
  out.insert(out.end(), l4.begin(), l4.end());
  return out;
}

inline queueio::PacketView ViewOf(const std::vector<std::uint8_t>& bytes) {
  queueio::PacketView view;
  view.payload = bytes;
  view.original_length = static_cast<std::uint32_t>(bytes.size());
  view.family = (bytes.empty() || (bytes[0] >> 4) == 4) ? 2 : 10;
  return view;
}

}  // namespace verdictd::rules::testing
