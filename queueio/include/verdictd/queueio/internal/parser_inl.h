// Template bodies of ForEachNetlinkMessage and ParseDatagram; included by parser.h only.
#pragma once

#include <linux/netlink.h>

#include <cstring>

namespace verdictd::queueio {

template <typename Fn>
bool ForEachNetlinkMessage(std::span<const std::uint8_t> datagram, Fn&& fn) noexcept {
  std::size_t offset = 0;
  while (datagram.size() - offset >= sizeof(nlmsghdr)) {
    nlmsghdr header;
    std::memcpy(&header, datagram.data() + offset, sizeof header);
    if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > datagram.size() - offset) {
      return false;
    }
    fn(datagram.subspan(offset, header.nlmsg_len));
    offset += NLMSG_ALIGN(header.nlmsg_len);
    if (offset > datagram.size()) break;
  }
  return offset >= datagram.size();
}

template <typename Fn>
std::size_t ParseDatagram(std::span<const std::uint8_t> datagram, Fn&& fn) noexcept {
  std::size_t offset = 0;
  std::size_t calls = 0;
  while (offset < datagram.size()) {
    const auto rest = datagram.subspan(offset);
    PacketView view;
    const ParseResult result = ParsePacketMessage(rest, view);
    ++calls;
    fn(result, static_cast<const PacketView&>(view));
    if (rest.size() < sizeof(nlmsghdr)) break;
    nlmsghdr header;
    std::memcpy(&header, rest.data(), sizeof header);
    // A length shorter than a header or longer than what is left: the next
    // message cannot be found (ParsePacketMessage reported it).
    if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > rest.size()) break;
    offset += NLMSG_ALIGN(header.nlmsg_len);
  }
  return calls;
}

}  // namespace verdictd::queueio
