// A zero-copy view of one packet the kernel queued to userspace.
//
// Every span points into the receive buffer the packet arrived in, so a
// PacketView is valid only until that buffer is reused by the next receive.
// Plain data: no allocation, no ownership, trivially copyable.
#pragma once

#include <cstdint>
#include <span>

namespace verdictd::queueio {

// Bits of PacketView::skb_info (NFQA_SKB_INFO). The kernel reports GSO and
// checksum state only when the queue was bound with the GSO flag.
inline constexpr std::uint32_t kSkbChecksumNotReady = 1u << 0;
inline constexpr std::uint32_t kSkbGso = 1u << 1;
inline constexpr std::uint32_t kSkbChecksumNotVerified = 1u << 2;

// Conntrack info as the kernel gives it in NFQA_CT_INFO (enum ip_conntrack_info).
enum class CtInfo : std::uint8_t {
  kEstablished = 0,
  kRelated = 1,
  kNew = 2,
  kEstablishedReply = 3,
  kRelatedReply = 4,
  kUnknown = 255,
};

struct PacketView {
  std::uint32_t id = 0;          // NFQA_PACKET_HDR packet_id: the key of the verdict
  std::uint16_t queue_num = 0;   // nfgenmsg res_id
  std::uint16_t hw_protocol = 0; // host order, e.g. 0x0800 for IPv4
  std::uint8_t hook = 0;         // NF_INET_* hook the packet was queued at
  std::uint8_t family = 0;       // nfgenmsg nfgen_family (AF_INET, AF_INET6, ...)

  bool has_mark = false;
  std::uint32_t mark = 0;

  // 0 when the kernel did not send the attribute.
  std::uint32_t indev = 0;
  std::uint32_t outdev = 0;
  std::uint32_t physindev = 0;
  std::uint32_t physoutdev = 0;

  // NFQA_TIMESTAMP is skb->tstamp (CLOCK_REALTIME); present only when
  // something on the host enabled receive timestamps.
  bool has_timestamp = false;
  std::int64_t timestamp_ns = 0;

  // The bytes userspace got (the network header first) and the length the
  // packet really has. original_length > payload.size() when copy range cut it;
  // 0 in metadata-only copy mode (the kernel sends NFQA_CAP_LEN only when it
  // copies packet bytes).
  std::span<const std::uint8_t> payload;
  std::uint32_t original_length = 0;

  std::uint32_t skb_info = 0;

  // NFQA_HWADDR: the link-layer source address (e.g. the sender's MAC at an
  // input hook), at most 8 bytes; empty when the kernel sent none.
  std::span<const std::uint8_t> hw_addr;

  // Present only when the queue has the conntrack flag on and the packet has
  // a conntrack entry.
  bool has_ct = false;
  CtInfo ct_info = CtInfo::kUnknown;
  std::uint32_t ct_id = 0;
  std::uint32_t ct_status = 0;

  // Present only with the uid/gid flag, for packets that belong to a local socket.
  bool has_uid = false;
  std::uint32_t uid = 0;
  bool has_gid = false;
  std::uint32_t gid = 0;

  // NFQA_SECCTX: the packet's security context as text (e.g. an SELinux
  // label from its secmark), present only with the secctx flag and a packet
  // that carries a secmark. Not NUL-terminated; empty when absent.
  std::span<const std::uint8_t> secctx;

  bool truncated() const noexcept { return original_length > payload.size(); }
  bool is_gso() const noexcept { return (skb_info & kSkbGso) != 0; }
};

}  // namespace verdictd::queueio
