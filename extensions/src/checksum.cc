#include "verdictd/extensions/checksum.h"

#include <cstddef>

namespace verdictd::extensions {
namespace {

constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kIcmpV6 = 58;

std::uint16_t Load16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
void Store16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// Sum of big-endian 16-bit words (an odd last byte padded with zero), in 64
// bits so that no carry is lost before the fold.
std::uint64_t Sum16(std::span<const std::uint8_t> bytes) noexcept {
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += Load16(bytes.data() + i);
  if (i < bytes.size()) sum += static_cast<std::uint64_t>(bytes[i]) << 8;
  return sum;
}

std::uint16_t Fold(std::uint64_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

// Offset of the checksum field inside the L4 header, or 0 when unknown.
std::size_t ChecksumOffset(std::uint8_t protocol) noexcept {
  switch (protocol) {
    case kTcp:
      return 16;
    case kUdp:
      return 6;
    case kIcmp:
    case kIcmpV6:
      return 2;
    default:
      return 0;
  }
}

std::size_t MinHeader(std::uint8_t protocol) noexcept {
  return protocol == kTcp ? 20 : protocol == kUdp ? 8 : 4;
}

// Writes the L4 checksum; `pseudo` is the pseudo-header sum (0 for ICMPv4).
bool FixL4(std::span<std::uint8_t> l4, std::uint8_t protocol, std::uint64_t pseudo) noexcept {
  const std::size_t at = ChecksumOffset(protocol);
  if (at == 0 || l4.size() < MinHeader(protocol) || l4.size() > 0xffff) return false;
  if (protocol == kUdp) Store16(l4.data() + 4, static_cast<std::uint16_t>(l4.size()));
  Store16(l4.data() + at, 0);
  std::uint16_t sum = Fold(pseudo + Sum16(l4));
  // UDP: 0 means "no checksum"; a computed 0 is sent as all ones (RFC 768).
  if (protocol == kUdp && sum == 0) sum = 0xffff;
  Store16(l4.data() + at, sum);
  return true;
}

RepairStatus RepairV4(std::span<std::uint8_t> p) noexcept {
  if (p.size() < 20 || p.size() > 0xffff) return RepairStatus::kUnsupported;
  const std::size_t ihl = static_cast<std::size_t>(p[0] & 0x0f) * 4;
  if (ihl < 20 || ihl > p.size()) return RepairStatus::kUnsupported;
  Store16(p.data() + 2, static_cast<std::uint16_t>(p.size()));
  Store16(p.data() + 10, 0);
  Store16(p.data() + 10, Fold(Sum16(p.first(ihl))));
  const std::uint16_t fragment = Load16(p.data() + 6);
  // Only a whole datagram carries its whole L4 checksum coverage.
  if ((fragment & 0x3fff) != 0) return RepairStatus::kHeaderOnly;
  const std::uint8_t protocol = p[9];
  std::span<std::uint8_t> l4 = p.subspan(ihl);
  std::uint64_t pseudo = 0;
  if (protocol != kIcmp) {
    pseudo = Sum16(p.subspan(12, 8)) + protocol + l4.size();
  }
  return FixL4(l4, protocol, pseudo) ? RepairStatus::kRepaired : RepairStatus::kHeaderOnly;
}

RepairStatus RepairV6(std::span<std::uint8_t> p) noexcept {
  if (p.size() < 40 || p.size() - 40 > 0xffff) return RepairStatus::kUnsupported;
  Store16(p.data() + 4, static_cast<std::uint16_t>(p.size() - 40));
  std::uint8_t next = p[6];
  std::size_t offset = 40;
  // Hop-by-hop, routing and destination options headers are skipped; a
  // fragment header ends the walk (no whole L4 segment here).
  for (int hops = 0; hops < 8; ++hops) {
    if (next == 0 || next == 43 || next == 60) {
      if (offset + 8 > p.size()) return RepairStatus::kHeaderOnly;
      const std::uint8_t following = p[offset];
      offset += (static_cast<std::size_t>(p[offset + 1]) + 1) * 8;
      next = following;
      continue;
    }
    break;
  }
  if (offset > p.size() || ChecksumOffset(next) == 0 || next == kIcmp) {
    return RepairStatus::kHeaderOnly;
  }
  std::span<std::uint8_t> l4 = p.subspan(offset);
  const std::uint64_t pseudo = Sum16(p.subspan(8, 32)) + l4.size() + next;
  return FixL4(l4, next, pseudo) ? RepairStatus::kRepaired : RepairStatus::kHeaderOnly;
}

}  // namespace

std::uint16_t InternetChecksum(std::span<const std::uint8_t> bytes, std::uint32_t initial) noexcept {
  return Fold(initial + Sum16(bytes));
}

RepairStatus RepairChecksums(std::span<std::uint8_t> packet) noexcept {
  if (packet.empty()) return RepairStatus::kUnsupported;
  switch (packet[0] >> 4) {
    case 4:
      return RepairV4(packet);
    case 6:
      return RepairV6(packet);
    default:
      return RepairStatus::kUnsupported;
  }
}

}  // namespace verdictd::extensions
