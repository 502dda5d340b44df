// Parses nfnetlink_queue messages into PacketViews without copying.
//
// Pure functions over byte spans: no allocation, no syscalls, never throws,
// safe on any input (truncated, lying lengths, missing attributes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "verdictd/queueio/packet.h"

namespace verdictd::queueio {

enum class ParseStatus : std::uint8_t {
  kOk,
  kTruncated,        // the buffer ends before the message or an attribute does
  kBadLength,        // a length field is impossible (shorter than its header, past the end)
  kNotPacket,        // a well-formed message of another type (handled by the caller)
  kMissingPacketHdr, // NFQNL_MSG_PACKET without NFQA_PACKET_HDR: no id, no verdict possible
  kNetlinkError,     // NLMSG_ERROR: error_code holds -errno from the kernel
  kDone,             // NLMSG_DONE / NLMSG_NOOP: nothing to do
};
const char* ParseStatusName(ParseStatus status) noexcept;

struct ParseResult {
  ParseStatus status = ParseStatus::kOk;
  // Meaningful for kOk, and also for kTruncated/kBadLength when the packet
  // header was read before the damage (has_id): such a packet still needs a
  // verdict or it sits in the kernel queue until it is flushed.
  bool has_id = false;
  std::uint32_t id = 0;
  int error_code = 0;  // kNetlinkError only
};

// Parses the single netlink message at the start of `message` (one
// nlmsghdr and its attributes). `out` is filled on kOk and partly otherwise.
ParseResult ParsePacketMessage(std::span<const std::uint8_t> message, PacketView& out) noexcept;

// Walks the netlink messages of one received datagram. `fn(message_span)` is
// called for each message whose header fits; returns false if the datagram
// ended in the middle of a header or a message claimed more bytes than remain.
template <typename Fn>
bool ForEachNetlinkMessage(std::span<const std::uint8_t> datagram, Fn&& fn) noexcept;

// Parses every message of one received datagram, the worker's entry (through
// ReceiveBatch::ForEachPacket, packet_source.h):
// `fn(const ParseResult&, const PacketView&)` is called once per message,
// including a last one cut short by the end of the datagram (a datagram
// truncated by MSG_TRUNC or a lying length): that one comes as kTruncated or
// kBadLength, with has_id when its packet header was readable, so the packet
// can still get a verdict. Stops after the first damaged message (nothing
// after it can be located). With `truncated` (the receive said MSG_TRUNC) and
// every message whole, one more call reports kTruncated without an id: the
// lost rest cannot be located. Returns the number of calls.
template <typename Fn>
std::size_t ParseDatagram(std::span<const std::uint8_t> datagram, bool truncated,
                          Fn&& fn) noexcept;
template <typename Fn>
std::size_t ParseDatagram(std::span<const std::uint8_t> datagram, Fn&& fn) noexcept;

}  // namespace verdictd::queueio

#include "verdictd/queueio/internal/parser_inl.h"
