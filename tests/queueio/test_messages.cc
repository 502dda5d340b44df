#include "test_messages.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <cstring>

namespace verdictd::queueio::testing {

std::vector<std::uint8_t> BuildPacketMessage(const SyntheticPacket& p) {
  std::vector<std::uint8_t> buf(MNL_SOCKET_BUFFER_SIZE + p.payload.size(), 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
  auto* gen = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  gen->nfgen_family = AF_INET;
  gen->version = NFNETLINK_V0;
  gen->res_id = htons(p.queue_num);
  if (p.with_packet_hdr) {
    nfqnl_msg_packet_hdr hdr{};
    hdr.packet_id = htonl(p.id);
    hdr.hw_protocol = htons(p.hw_protocol);
    hdr.hook = p.hook;
    mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof hdr, &hdr);
  }
  auto put32 = [&](int type, const std::optional<std::uint32_t>& v) {
    if (v) mnl_attr_put_u32(nlh, static_cast<std::uint16_t>(type), htonl(*v));
  };
  put32(NFQA_MARK, p.mark);
  put32(NFQA_IFINDEX_INDEV, p.indev);
  put32(NFQA_IFINDEX_OUTDEV, p.outdev);
  put32(NFQA_UID, p.uid);
  put32(NFQA_GID, p.gid);
  put32(NFQA_SKB_INFO, p.skb_info);
  put32(NFQA_CAP_LEN, p.cap_len);
  if (!p.payload.empty()) {
    mnl_attr_put(nlh, NFQA_PAYLOAD, p.payload.size(), p.payload.data());
  }
  buf.resize(nlh->nlmsg_len);
  return buf;
}

std::vector<std::uint8_t> BuildErrorMessage(int error, std::uint32_t seq) {
  std::vector<std::uint8_t> buf(256, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = NLMSG_ERROR;
  nlh->nlmsg_seq = seq;
  auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
  err->error = error;
  err->msg.nlmsg_len = sizeof(nlmsghdr);
  err->msg.nlmsg_seq = seq;
  buf.resize(nlh->nlmsg_len);
  return buf;
}

std::optional<std::vector<DecodedVerdict>> DecodeVerdicts(std::span<const std::uint8_t> buffer) {
  std::vector<DecodedVerdict> out;
  // Copy into aligned storage: libmnl reads through struct pointers.
  std::vector<std::uint32_t> aligned((buffer.size() + 3) / 4);
  std::memcpy(aligned.data(), buffer.data(), buffer.size());
  const auto* data = reinterpret_cast<const char*>(aligned.data());
  int len = static_cast<int>(buffer.size());
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(data);
  while (mnl_nlmsg_ok(nlh, len)) {
    DecodedVerdict v;
    if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_QUEUE) return std::nullopt;
    v.type = nlh->nlmsg_type & 0xff;
    if ((nlh->nlmsg_flags & NLM_F_REQUEST) == 0) return std::nullopt;
    const auto* gen = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
    v.queue_num = ntohs(gen->res_id);
    bool has_hdr = false;
    const nlattr* attr;
    for (attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
         mnl_attr_ok(attr, static_cast<int>(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                                            reinterpret_cast<const char*>(attr)));
         attr = mnl_attr_next(attr)) {
      switch (mnl_attr_get_type(attr)) {
        case NFQA_VERDICT_HDR: {
          if (mnl_attr_get_payload_len(attr) != sizeof(nfqnl_msg_verdict_hdr)) return std::nullopt;
          nfqnl_msg_verdict_hdr hdr;
          std::memcpy(&hdr, mnl_attr_get_payload(attr), sizeof hdr);
          v.verdict = ntohl(hdr.verdict);
          v.id = ntohl(hdr.id);
          has_hdr = true;
          break;
        }
        case NFQA_MARK:
          v.mark = ntohl(mnl_attr_get_u32(attr));
          break;
        case NFQA_PAYLOAD: {
          const auto* p = static_cast<const std::uint8_t*>(mnl_attr_get_payload(attr));
          v.payload.assign(p, p + mnl_attr_get_payload_len(attr));
          break;
        }
        case NFQA_CT: {
          const nlattr* inner;
          for (inner = static_cast<const nlattr*>(mnl_attr_get_payload(attr));
               mnl_attr_ok(inner, static_cast<int>(
                                      static_cast<const char*>(mnl_attr_get_payload(attr)) +
                                      mnl_attr_get_payload_len(attr) -
                                      reinterpret_cast<const char*>(inner)));
               inner = mnl_attr_next(inner)) {
            if (mnl_attr_get_type(inner) == CTA_MARK) v.connmark = ntohl(mnl_attr_get_u32(inner));
          }
          break;
        }
        default:
          return std::nullopt;
      }
    }
    if (!has_hdr) return std::nullopt;
    out.push_back(std::move(v));
    nlh = mnl_nlmsg_next(nlh, &len);
  }
  if (len != 0) return std::nullopt;
  return out;
}

}  // namespace verdictd::queueio::testing
