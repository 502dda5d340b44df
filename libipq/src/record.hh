// Turns nfnetlink_queue messages into the records ipq_read() hands out, as
// ip_queue sent them: a netlink header of type IPQM_PACKET followed by an
// ipq_packet_msg_t and the payload, or an NLMSG_ERROR message.
//
// Pure functions over byte spans (queueio's parser does the parsing): no
// system calls, no allocation, never throw, safe on any input. The output
// buffer needs no alignment (everything is written with memcpy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "verdictd/queueio/packet.h"

namespace verdictd::libipq {

// Interface names and hardware types by index, for the packet's devices.
class InterfaceDirectory {
 public:
  virtual ~InterfaceDirectory() = default;
  // Writes the name of interface `index` into `name` (IFNAMSIZ bytes, NUL
  // terminated, "" when unknown) and returns its ARPHRD_* type (0 unknown).
  virtual std::uint16_t Lookup(std::uint32_t index, char* name) noexcept = 0;
};

struct RecordContext {
  // CLOCK_REALTIME when the batch was received: the timestamp of packets
  // the kernel did not timestamp.
  std::int64_t receipt_time_ns = 0;
  InterfaceDirectory* interfaces = nullptr;  // null: interface names stay ""
  // AF_INET or AF_INET6: packets of another family are not formatted
  // (kOtherFamily); 0 accepts any.
  std::uint8_t family = 0;
};

enum class RecordStatus : std::uint8_t {
  kPacket,       // a packet record of `length` bytes was written
  kError,        // an NLMSG_ERROR record of `length` bytes was written
  kTooSmall,     // the record needs `length` bytes, more than the buffer has; nothing written
  kOtherFamily,  // a packet of another protocol family; nothing written
  kIgnore,       // nothing for the program: an acknowledgement, NLMSG_DONE, another type
  kMalformed,    // the message cannot be parsed; nothing written
};

struct RecordResult {
  RecordStatus status = RecordStatus::kIgnore;
  std::size_t length = 0;
  // The packet of a kPacket, kTooSmall, kOtherFamily or kMalformed result
  // still needs a verdict when has_id (its header was readable).
  bool has_id = false;
  std::uint32_t id = 0;
};

// The bytes a packet record takes: header, ipq_packet_msg_t, payload.
std::size_t PacketRecordSize(std::size_t payload_size) noexcept;

// Writes the record of an already parsed packet.
RecordResult FormatPacketRecord(const queueio::PacketView& view, const RecordContext& context,
                                std::span<std::uint8_t> out) noexcept;

// Parses one netlink message (the start of `message`) and writes its record.
RecordResult FormatMessageRecord(std::span<const std::uint8_t> message,
                                 const RecordContext& context,
                                 std::span<std::uint8_t> out) noexcept;

}  // namespace verdictd::libipq

// The fuzzing entry: formats every message of one received datagram into
// `out` in turn (each record overwrites the last) and returns the number of
// records written (packets and errors). Internal: not exported from libipq.so.
extern "C" int LibipqFormatDatagram(const std::uint8_t* data, std::size_t size, unsigned char* out,
                                    std::size_t out_len);
