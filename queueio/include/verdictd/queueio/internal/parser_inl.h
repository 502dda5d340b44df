// Template body of ForEachNetlinkMessage; included by parser.h only.
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

}  // namespace verdictd::queueio
