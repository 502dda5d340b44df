// Builders of netlink messages for the queue I/O tests (synthetic packet
// messages in the kernel's layout) and small byte helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace verdictd::queueio::testing {

struct SyntheticPacket {
  std::uint32_t id = 1;
  std::uint16_t queue_num = 0;
  std::uint16_t hw_protocol = 0x0800;
  std::uint8_t hook = 3;
  std::optional<std::uint32_t> mark;
  std::optional<std::uint32_t> indev;
  std::optional<std::uint32_t> outdev;
  std::optional<std::uint32_t> cap_len;
  std::optional<std::uint32_t> skb_info;
  std::optional<std::uint32_t> uid;
  std::optional<std::uint32_t> gid;
  std::vector<std::uint8_t> payload = {0x45, 0, 0, 20};
  bool with_packet_hdr = true;
};

// One NFQNL_MSG_PACKET message as the kernel builds it.
std::vector<std::uint8_t> BuildPacketMessage(const SyntheticPacket& packet);

// An NLMSG_ERROR message carrying `error` (-errno, 0 = ack).
std::vector<std::uint8_t> BuildErrorMessage(int error, std::uint32_t seq);

// Decoded verdict message (what the kernel reads from one of ours).
struct DecodedVerdict {
  std::uint16_t type = 0;  // NFQNL_MSG_VERDICT or NFQNL_MSG_VERDICT_BATCH
  std::uint16_t queue_num = 0;
  std::uint32_t verdict = 0;
  std::uint32_t id = 0;
  std::optional<std::uint32_t> mark;
  std::optional<std::uint32_t> connmark;
  std::vector<std::uint8_t> payload;
};
// Splits a send buffer into its verdict messages; empty optional if malformed.
std::optional<std::vector<DecodedVerdict>> DecodeVerdicts(std::span<const std::uint8_t> buffer);

}  // namespace verdictd::queueio::testing
