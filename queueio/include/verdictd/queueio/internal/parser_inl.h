// Template bodies of ForEachNetlinkMessage and ParseDatagram; included by parser.h only.
//
// The netlink header is read through a layout-identical copy of struct
// nlmsghdr (checked against <linux/netlink.h> in parser.cc), so that callers
// of the parser, the worker loop among them, include no kernel header.
#pragma once

#include <cstddef>
#include <cstring>

namespace verdictd::queueio::internal {

// struct nlmsghdr: length (header included), type, flags, sequence, port id.
struct NetlinkHeader {
  std::uint32_t length;
  std::uint16_t type;
  std::uint16_t flags;
  std::uint32_t seq;
  std::uint32_t pid;
};

// NLMSG_ALIGN: messages in a datagram start on 4-byte boundaries.
constexpr std::size_t NetlinkAlign(std::size_t length) noexcept { return (length + 3) & ~std::size_t{3}; }

}  // namespace verdictd::queueio::internal

namespace verdictd::queueio {

template <typename Fn>
bool ForEachNetlinkMessage(std::span<const std::uint8_t> datagram, Fn&& fn) noexcept {
  using internal::NetlinkHeader;
  std::size_t offset = 0;
  while (datagram.size() - offset >= sizeof(NetlinkHeader)) {
    NetlinkHeader header;
    std::memcpy(&header, datagram.data() + offset, sizeof header);
    if (header.length < sizeof(NetlinkHeader) || header.length > datagram.size() - offset) {
      return false;
    }
    fn(datagram.subspan(offset, header.length));
    offset += internal::NetlinkAlign(header.length);
    if (offset > datagram.size()) break;
  }
  return offset >= datagram.size();
}

template <typename Fn>
std::size_t ParseDatagram(std::span<const std::uint8_t> datagram, bool truncated,
                          Fn&& fn) noexcept {
  using internal::NetlinkHeader;
  std::size_t offset = 0;
  std::size_t calls = 0;
  while (offset < datagram.size()) {
    const auto rest = datagram.subspan(offset);
    PacketView view;
    const ParseResult result = ParsePacketMessage(rest, view);
    ++calls;
    fn(result, static_cast<const PacketView&>(view));
    if (rest.size() < sizeof(NetlinkHeader)) return calls;
    NetlinkHeader header;
    std::memcpy(&header, rest.data(), sizeof header);
    // A length shorter than a header or longer than what is left: the next
    // message cannot be found (ParsePacketMessage reported it).
    if (header.length < sizeof(NetlinkHeader) || header.length > rest.size()) return calls;
    offset += internal::NetlinkAlign(header.length);
  }
  if (truncated) {
    // Cut by the receive slot (MSG_TRUNC) exactly at a message boundary:
    // what is lost cannot be located, so it comes as one damaged message
    // without an id.
    ParseResult cut;
    cut.status = ParseStatus::kTruncated;
    fn(static_cast<const ParseResult&>(cut), PacketView{});
    ++calls;
  }
  return calls;
}

template <typename Fn>
std::size_t ParseDatagram(std::span<const std::uint8_t> datagram, Fn&& fn) noexcept {
  return ParseDatagram(datagram, false, std::forward<Fn>(fn));
}

}  // namespace verdictd::queueio
