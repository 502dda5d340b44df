// In-memory PacketSource + VerdictSink for tests and benchmarks: replays
// recorded datagrams (e.g. captured netlink messages) and keeps what was sent.
//
// Receive() hands out up to `batch_size` datagrams from the script, cycling
// when `loop` is set; Send() appends to a pre-reserved buffer (or only counts
// bytes when recording is off). Not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "verdictd/queueio/packet_source.h"
#include "verdictd/queueio/verdict_sink.h"

namespace verdictd::queueio {

class MemoryQueue final : public PacketSource, public VerdictSink {
 public:
  MemoryQueue(std::vector<std::vector<std::uint8_t>> datagrams, std::size_t batch_size,
              bool loop);

  ReceiveStatus Receive(ReceiveBatch& batch, bool block, int timeout_ms) noexcept override;
  SendStatus Send(std::span<const std::uint8_t> messages) noexcept override;

  void set_record_sends(bool record) { record_sends_ = record; }
  // Every buffer passed to Send(), in order (only when recording).
  const std::vector<std::vector<std::uint8_t>>& sent() const { return sent_; }
  std::uint64_t send_calls() const { return send_calls_; }
  std::uint64_t sent_bytes() const { return sent_bytes_; }

 private:
  std::vector<std::vector<std::uint8_t>> script_;
  std::vector<Datagram> batch_;
  std::size_t batch_size_;
  std::size_t next_ = 0;
  bool loop_;
  bool record_sends_ = true;
  std::vector<std::vector<std::uint8_t>> sent_;
  std::uint64_t send_calls_ = 0;
  std::uint64_t sent_bytes_ = 0;
};

}  // namespace verdictd::queueio
