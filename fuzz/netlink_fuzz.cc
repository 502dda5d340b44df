// The netlink datagram parser (queueio): what the kernel, or anything that
// can write to the queue socket, hands the worker. Checks that every view
// the parser returns lies inside the input.
#include <cstdlib>
#include <span>

#include "fuzz_target.h"
#include "verdictd/queueio/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> datagram(data, size);
  verdictd::queueio::ParseDatagram(
      datagram, [&](const verdictd::queueio::ParseResult& result,
                    const verdictd::queueio::PacketView& packet) {
        if (result.status != verdictd::queueio::ParseStatus::kOk || packet.payload.empty()) return;
        if (packet.payload.data() < data || packet.payload.data() + packet.payload.size() > data + size) {
          std::abort();  // a view outside the datagram
        }
      });
  return 0;
}
