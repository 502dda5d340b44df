#include "netlink_test_util.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <cstring>

namespace verdictd::service::testing {
namespace {

nlmsghdr* PutHeader(std::vector<std::uint8_t>& buffer, std::uint16_t type, std::uint16_t queue) {
  buffer.assign(16 * 1024, 0);
  nlmsghdr* header = mnl_nlmsg_put_header(buffer.data());
  header->nlmsg_type = type;
  auto* gen = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(nfgenmsg)));
  gen->nfgen_family = AF_INET;
  gen->version = NFNETLINK_V0;
  gen->res_id = htons(queue);
  return header;
}

std::uint16_t PacketType() { return (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET; }

}  // namespace

std::vector<std::uint8_t> PacketMessage(const PacketSpec& spec) {
  std::vector<std::uint8_t> buffer;
  nlmsghdr* header = PutHeader(buffer, PacketType(), spec.queue);
  nfqnl_msg_packet_hdr packet_hdr{};
  packet_hdr.packet_id = htonl(spec.id);
  packet_hdr.hw_protocol = htons(0x0800);
  packet_hdr.hook = NF_INET_FORWARD;
  mnl_attr_put(header, NFQA_PACKET_HDR, sizeof packet_hdr, &packet_hdr);
  std::vector<std::uint8_t> payload(spec.payload_size, 0x45);
  mnl_attr_put(header, NFQA_PAYLOAD, payload.size(), payload.data());
  if (spec.original_length != 0) mnl_attr_put_u32(header, NFQA_CAP_LEN, htonl(spec.original_length));
  if (spec.gso) mnl_attr_put_u32(header, NFQA_SKB_INFO, htonl(NFQA_SKB_GSO));
  buffer.resize(header->nlmsg_len);
  return buffer;
}

std::vector<std::uint8_t> BrokenPayloadMessage(std::uint32_t id, std::uint16_t queue) {
  std::vector<std::uint8_t> message = PacketMessage({.id = id, .queue = queue, .payload_size = 200});
  // Cut the datagram inside the payload attribute but keep nlmsg_len honest
  // about the bytes present, so only the attribute's length lies.
  message.resize(message.size() - 100);
  nlmsghdr header;
  std::memcpy(&header, message.data(), sizeof header);
  header.nlmsg_len = static_cast<std::uint32_t>(message.size());
  std::memcpy(message.data(), &header, sizeof header);
  return message;
}

std::vector<std::uint8_t> MessageWithoutHeader(std::uint16_t queue) {
  std::vector<std::uint8_t> buffer;
  nlmsghdr* header = PutHeader(buffer, PacketType(), queue);
  std::vector<std::uint8_t> payload(40, 0x45);
  mnl_attr_put(header, NFQA_PAYLOAD, payload.size(), payload.data());
  buffer.resize(header->nlmsg_len);
  return buffer;
}

std::vector<std::uint8_t> ErrorMessage(int error) {
  std::vector<std::uint8_t> buffer(4096, 0);
  nlmsghdr* header = mnl_nlmsg_put_header(buffer.data());
  header->nlmsg_type = NLMSG_ERROR;
  auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(header, sizeof(nlmsgerr)));
  err->error = -error;
  buffer.resize(header->nlmsg_len);
  return buffer;
}

std::vector<std::vector<std::uint8_t>> PacketDatagrams(std::uint32_t first, std::size_t count,
                                                        std::uint16_t queue) {
  std::vector<std::vector<std::uint8_t>> datagrams;
  for (std::size_t i = 0; i < count; ++i) {
    datagrams.push_back(PacketMessage({.id = first + static_cast<std::uint32_t>(i), .queue = queue}));
  }
  return datagrams;
}

void KernelModel::Apply(std::span<const std::uint8_t> buffer) {
  std::size_t offset = 0;
  while (offset + sizeof(nlmsghdr) <= buffer.size()) {
    nlmsghdr header;
    std::memcpy(&header, buffer.data() + offset, sizeof header);
    if (header.nlmsg_len < sizeof header || offset + header.nlmsg_len > buffer.size()) {
      problems_.push_back("bad message length in a sent buffer");
      return;
    }
    const std::uint16_t type = header.nlmsg_type & 0xff;
    const nfqnl_msg_verdict_hdr* verdict = nullptr;
    // Copy into an aligned buffer: the sent bytes may not be 4-aligned in a vector.
    std::vector<std::uint8_t> copy(buffer.begin() + static_cast<std::ptrdiff_t>(offset),
                                   buffer.begin() + static_cast<std::ptrdiff_t>(offset + header.nlmsg_len));
    const auto* aligned = reinterpret_cast<const nlmsghdr*>(copy.data());
    const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(aligned));
    for (auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(aligned, sizeof(nfgenmsg)));
         mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)));
         attr = mnl_attr_next(attr)) {
      if (mnl_attr_get_type(attr) == NFQA_VERDICT_HDR) {
        verdict = static_cast<const nfqnl_msg_verdict_hdr*>(mnl_attr_get_payload(attr));
      }
    }
    if (verdict == nullptr) {
      problems_.push_back("verdict message without NFQA_VERDICT_HDR");
    } else {
      const std::uint32_t id = ntohl(verdict->id);
      const std::uint32_t code = ntohl(verdict->verdict);
      if (type == NFQNL_MSG_VERDICT) {
        ++single_messages_;
        if (queued_.erase(id) == 0) {
          problems_.push_back("verdict for id " + std::to_string(id) + " which is not queued");
        } else {
          verdicts_[id] = code;
        }
      } else if (type == NFQNL_MSG_VERDICT_BATCH) {
        ++batch_messages_;
        // The kernel's rule: every queued id <= id.
        std::size_t covered = 0;
        for (auto it = queued_.begin(); it != queued_.end() && *it <= id;) {
          verdicts_[*it] = code;
          it = queued_.erase(it);
          ++covered;
        }
        if (covered == 0) problems_.push_back("batch verdict up to " + std::to_string(id) + " covers nothing");
      } else {
        problems_.push_back("unexpected message type " + std::to_string(type));
      }
    }
    offset += NLMSG_ALIGN(header.nlmsg_len);
  }
}

}  // namespace verdictd::service::testing
