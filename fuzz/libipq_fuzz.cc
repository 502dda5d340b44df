// libipq's conversion of a received netlink datagram into the records
// ipq_read() hands a program (libipq/src/record.hh): what the kernel, or
// anything that can write to the queue socket, feeds it. Each message is
// formatted into buffers too small, just right and large; a record must fit
// the buffer it was written to and say its own length.
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_target.h"
#include "record.hh"
#include "verdictd/queueio/parser.h"

namespace {

using verdictd::libipq::FormatMessageRecord;
using verdictd::libipq::RecordContext;
using verdictd::libipq::RecordResult;
using verdictd::libipq::RecordStatus;

void Check(std::span<const std::uint8_t> message, std::size_t out_size, std::uint8_t family) {
  std::vector<std::uint8_t> out(out_size);
  RecordContext context;
  context.receipt_time_ns = 1;
  context.family = family;
  const RecordResult r = FormatMessageRecord(message, context, out);
  if (r.status == RecordStatus::kPacket || r.status == RecordStatus::kError) {
    nlmsghdr header;
    if (r.length > out.size() || r.length < sizeof header) std::abort();
    std::memcpy(&header, out.data(), sizeof header);
    if (header.nlmsg_len != r.length) std::abort();
  } else if (r.status == RecordStatus::kTooSmall && r.length <= out.size()) {
    std::abort();  // it would have fitted
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> datagram(data, size);
  verdictd::queueio::ForEachNetlinkMessage(datagram, [&](std::span<const std::uint8_t> message) {
    for (std::size_t out_size : {std::size_t{20}, std::size_t{112}, std::size_t{2048},
                                 std::size_t{70000}}) {
      Check(message, out_size, AF_INET);
    }
    Check(message, 70000, AF_INET6);
    Check(message, 70000, 0);
  });
  std::vector<unsigned char> out(2048);
  LibipqFormatDatagram(data, size, out.data(), out.size());
  return 0;
}
