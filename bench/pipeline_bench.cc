// The per-packet userspace pipeline without the kernel: receive a batch of
// recorded nfnetlink_queue packet messages, parse each, decide (the default
// verdict), count, encode and batch the verdicts, flush once per batch.
// Reported per packet (items_per_second = packets/s; ns/packet = 1e9 / that)
// at receive batch sizes 1, 16, 64 and 256, plus the parts on their own:
// parsing, verdict encoding (single, batch, many singles in one buffer), the
// batcher and the per-packet accounting; and the real Worker with and
// without a storm of live reloads.
//
// Every benchmark reports allocs_per_packet from the counting operator new
// (bench/support): the steady state must be 0.
//
// Messages: the captured kernel fixture ipv4_udp (tests/fixtures) when the
// fixtures are built, else one laid out exactly as the kernel builds it for a
// forwarded IPv4 UDP packet (nfqnl_build_packet_message: packet header, in/out
// interface, hardware address, payload), 64-byte UDP payload. Packet ids
// increase as they do in the kernel, so the batcher folds runs as it does live.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>
#include <thread>
#include <vector>

#include "verdictd/bench/alloc_counter.h"
#include "verdictd/metrics/worker_counters.h"
#include "verdictd/queueio/packet_source.h"
#include "verdictd/queueio/parser.h"
#include "verdictd/queueio/verdict_batcher.h"
#include "verdictd/queueio/verdict_encoder.h"
#include "verdictd/queueio/verdict_sink.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/decider.h"
#include "verdictd/service/policy_exchange.h"
#include "verdictd/service/worker.h"

#if __has_include("verdictd/test_fixtures/fixtures.h")
#include "verdictd/test_fixtures/fixtures.h"
#define VERDICTD_HAVE_FIXTURES 1
#endif

namespace {

using verdictd::queueio::Datagram;
using verdictd::queueio::PacketView;
using verdictd::queueio::ReceiveBatch;
using verdictd::queueio::ReceiveStatus;
using verdictd::queueio::SendStatus;
using verdictd::queueio::Verdict;

constexpr std::uint16_t kQueue = 0;
constexpr std::size_t kUdpPayload = 64;
// Offset of the packet id inside a message: nlmsghdr, nfgenmsg, nlattr.
constexpr std::size_t kIdOffset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)) + NLA_HDRLEN;

void PutAttr(std::vector<std::uint8_t>& out, std::uint16_t type, const void* data,
             std::size_t size) {
  nlattr attr{};
  attr.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + size);
  attr.nla_type = type;
  const std::size_t at = out.size();
  out.resize(at + NLA_ALIGN(attr.nla_len), 0);
  std::memcpy(out.data() + at, &attr, sizeof attr);
  std::memcpy(out.data() + at + NLA_HDRLEN, data, size);
}

// One NFQNL_MSG_PACKET as the kernel sends it for a forwarded IPv4/UDP packet.
std::vector<std::uint8_t> PacketMessage(std::uint32_t id) {
  std::vector<std::uint8_t> out(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)), 0);
  nfgenmsg gen{};
  gen.nfgen_family = AF_INET;
  gen.version = NFNETLINK_V0;
  gen.res_id = htons(kQueue);
  std::memcpy(out.data() + NLMSG_HDRLEN, &gen, sizeof gen);

  nfqnl_msg_packet_hdr hdr{};
  hdr.packet_id = htonl(id);
  hdr.hw_protocol = htons(0x0800);
  hdr.hook = 2;  // NF_INET_FORWARD
  PutAttr(out, NFQA_PACKET_HDR, &hdr, sizeof hdr);
  const std::uint32_t indev = htonl(2), outdev = htonl(3);
  PutAttr(out, NFQA_IFINDEX_INDEV, &indev, sizeof indev);
  PutAttr(out, NFQA_IFINDEX_OUTDEV, &outdev, sizeof outdev);
  nfqnl_msg_packet_hw hw{};
  hw.hw_addrlen = htons(6);
  const std::array<std::uint8_t, 6> mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  std::memcpy(hw.hw_addr, mac.data(), mac.size());
  PutAttr(out, NFQA_HWADDR, &hw, sizeof hw);

  // IPv4 + UDP header + payload: 10.77.1.10:40000 -> 10.77.2.1:9000.
  std::vector<std::uint8_t> ip(20 + 8 + kUdpPayload, 0x5a);
  const std::uint16_t total = htons(static_cast<std::uint16_t>(ip.size()));
  const std::array<std::uint8_t, 20> ip_header = {
      0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 63, 17, 0, 0, 10, 77, 1, 10, 10, 77, 2, 1};
  std::memcpy(ip.data(), ip_header.data(), ip_header.size());
  std::memcpy(ip.data() + 2, &total, 2);
  const std::uint16_t sport = htons(40000), dport = htons(9000);
  const std::uint16_t udp_len = htons(static_cast<std::uint16_t>(8 + kUdpPayload));
  std::memcpy(ip.data() + 20, &sport, 2);
  std::memcpy(ip.data() + 22, &dport, 2);
  std::memcpy(ip.data() + 24, &udp_len, 2);
  ip[26] = ip[27] = 0;
  PutAttr(out, NFQA_PAYLOAD, ip.data(), ip.size());

  nlmsghdr nlh{};
  nlh.nlmsg_len = static_cast<std::uint32_t>(out.size());
  nlh.nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
  std::memcpy(out.data(), &nlh, sizeof nlh);
  return out;
}

// The message the pipeline replays: the captured one when it is there and
// has its packet id where the replay rewrites it.
std::vector<std::uint8_t> TemplateMessage() {
#ifdef VERDICTD_HAVE_FIXTURES
  std::vector<std::uint8_t> captured = verdictd::test_fixtures::LoadFixture("ipv4_udp");
  PacketView packet;
  std::uint32_t at_offset = 0;
  if (captured.size() >= kIdOffset + 4) {
    std::memcpy(&at_offset, captured.data() + kIdOffset, 4);
    const auto result = verdictd::queueio::ParsePacketMessage(captured, packet);
    if (result.status == verdictd::queueio::ParseStatus::kOk && packet.id == ntohl(at_offset)) {
      return captured;
    }
  }
#endif
  return PacketMessage(1);
}

// Serves pre-built packet messages like a receive would: each datagram gets
// the next packet id written into it (the kernel numbers packets in order).
class ReplaySource final : public verdictd::queueio::PacketSource {
 public:
  ReplaySource(std::size_t ring, std::size_t batch) : batch_size_(batch), slots_(batch) {
    const std::vector<std::uint8_t> message = TemplateMessage();
    for (std::size_t i = 0; i < ring; ++i) ring_.push_back(message);
  }
  ReceiveStatus Receive(ReceiveBatch& batch, bool, int) noexcept override {
    for (std::size_t i = 0; i < batch_size_; ++i) {
      std::vector<std::uint8_t>& message = ring_[next_];
      next_ = next_ + 1 == ring_.size() ? 0 : next_ + 1;
      const std::uint32_t id = htonl(++id_);
      std::memcpy(message.data() + kIdOffset, &id, sizeof id);
      slots_[i] = Datagram{std::span<const std::uint8_t>(message.data(), message.size()), false};
    }
    batch.datagrams = std::span<const Datagram>(slots_.data(), batch_size_);
    return ReceiveStatus::kOk;
  }

 private:
  std::size_t batch_size_;
  std::vector<Datagram> slots_;
  std::vector<std::vector<std::uint8_t>> ring_;
  std::size_t next_ = 0;
  std::uint32_t id_ = 0;
};

// Takes the verdict buffer as a send would, without a kernel.
class NullSink final : public verdictd::queueio::VerdictSink {
 public:
  SendStatus Send(std::span<const std::uint8_t> messages) noexcept override {
    benchmark::DoNotOptimize(messages.data());
    bytes_ += messages.size();
    ++sends_;
    return SendStatus::kOk;
  }
  std::uint64_t bytes_ = 0;
  std::uint64_t sends_ = 0;
};

// Runs `fn` (which handles `packets_per_call` packets) many times after a
// warm-up and reports the heap allocations per packet in that steady state.
// Measured outside the timed loop, so the benchmark framework's own
// allocations are not counted and the timing carries no counter reads.
template <typename Fn>
void ReportSteadyAllocations(benchmark::State& state, std::uint64_t packets_per_call, Fn&& fn) {
  constexpr int kWarmup = 64, kCalls = 4096;
  for (int i = 0; i < kWarmup; ++i) fn();
  verdictd::bench::AllocationScope scope;
  for (int i = 0; i < kCalls; ++i) fn();
  state.counters["allocs_per_packet"] = static_cast<double>(scope.Delta().allocations) /
                                        static_cast<double>(kCalls * packets_per_call);
}

// The whole per-packet path, as the worker runs it between a receive and a send.
void BM_Pipeline_ParseDecideEncodeBatch(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  ReplaySource source(1024, batch);
  NullSink sink;
  verdictd::service::FixedVerdictDecider decider(Verdict::Accept());
  verdictd::queueio::VerdictBatcher batcher(kQueue, 64 * 1024, 256);
  verdictd::metrics::WorkerCounters counters;
  ReceiveBatch received;

  auto one_batch = [&] {
    source.Receive(received, false, 0);
    // The worker's entry: the parsed packets of the receive (ParseDatagram).
    received.ForEachPacket([&](const verdictd::queueio::ParseResult& result,
                               const PacketView& packet) {
      if (result.status != verdictd::queueio::ParseStatus::kOk) return;
      counters.packets.Add();
      counters.bytes.Add(packet.original_length);
      const Verdict verdict = decider.Decide(packet, 0);
      if (batcher.Add(packet.id, verdict) == verdictd::queueio::AddStatus::kNeedsFlush) {
        batcher.Flush(sink);
        batcher.Add(packet.id, verdict);
      }
      counters.verdicts[static_cast<std::size_t>(verdict.kind)].Add();
    });
    batcher.Flush(sink);  // the receive side would block: flush
  };
  ReportSteadyAllocations(state, batch, one_batch);

  std::uint64_t packets = 0;
  for (auto _ : state) {
    one_batch();
    packets += batch;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
  state.counters["sends_per_packet"] =
      static_cast<double>(batcher.stats().sends) / static_cast<double>(counters.packets.value());
  state.counters["verdict_bytes_per_packet"] =
      static_cast<double>(sink.bytes_) / static_cast<double>(counters.packets.value());
}
BENCHMARK(BM_Pipeline_ParseDecideEncodeBatch)->Arg(1)->Arg(16)->Arg(64)->Arg(256);

// The real Worker over the replayed messages, one RunOnce per receive batch
// of 64. Arg 1: meanwhile a control thread publishes a new policy every
// millisecond (alternating the batch size 128/256, as a reload of the
// batching keys does) and reclaims old ones. Compare ns/packet with Arg 0 of
// the same run: what a reload costs the packets flowing through it.
void BM_Worker_UnderReloads(benchmark::State& state) {
  const bool reloading = state.range(0) != 0;
  ReplaySource source(1024, 64);
  NullSink sink;
  verdictd::service::PolicyExchange exchange(
      verdictd::service::BuildPolicy(verdictd::config::Config{}, 1, 1), 1);
  verdictd::metrics::WorkerCounters counters;
  verdictd::service::WorkerOptions options;
  options.receive_batch = 64;
  verdictd::service::Worker worker(options, source, sink, exchange, counters);

  std::atomic<bool> stop{false};
  std::uint64_t published = 0;
  std::thread control;
  if (reloading) {
    control = std::thread([&] {
      verdictd::config::Config config;
      for (std::uint64_t generation = 2; !stop.load(std::memory_order_relaxed); ++generation) {
        config.verdict.batch_size = generation % 2 == 0 ? 128 : 256;
        exchange.Publish(verdictd::service::BuildPolicy(config, 1, generation));
        exchange.Reclaim();
        ++published;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  for (auto _ : state) worker.RunOnce(false);
  stop.store(true);
  if (control.joinable()) control.join();
  worker.Flush();
  state.SetItemsProcessed(static_cast<std::int64_t>(counters.packets.value()));
  state.counters["policies_published"] = static_cast<double>(published);
  state.counters["sends_per_packet"] =
      static_cast<double>(worker.batcher_stats().sends) /
      static_cast<double>(std::max<std::uint64_t>(1, counters.packets.value()));
}
BENCHMARK(BM_Worker_UnderReloads)->Arg(0)->Arg(1)->UseRealTime();

void BM_Parse_PacketMessage(benchmark::State& state) {
  const std::vector<std::uint8_t> message = TemplateMessage();
  auto parse = [&] {
    PacketView packet;
    auto result = verdictd::queueio::ParsePacketMessage(message, packet);
    benchmark::DoNotOptimize(result);
    benchmark::DoNotOptimize(packet);
  };
  ReportSteadyAllocations(state, 1, parse);
  std::uint64_t packets = 0;
  for (auto _ : state) {
    parse();
    ++packets;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
}
BENCHMARK(BM_Parse_PacketMessage);

#ifdef VERDICTD_HAVE_FIXTURES
// Every captured packet fixture in turn (UDP, IPv6, GSO TCP, uid/gid,
// metadata only, cut by the copy range, mark, timestamp): a mix of shapes.
void BM_Parse_CapturedMix(benchmark::State& state) {
  std::vector<std::vector<std::uint8_t>> messages;
  for (const auto& name : verdictd::test_fixtures::PacketFixtureNames()) {
    messages.push_back(verdictd::test_fixtures::LoadFixture(name));
  }
  std::size_t next = 0;
  auto parse = [&] {
    PacketView packet;
    auto result = verdictd::queueio::ParsePacketMessage(messages[next], packet);
    next = next + 1 == messages.size() ? 0 : next + 1;
    benchmark::DoNotOptimize(result);
    benchmark::DoNotOptimize(packet);
  };
  ReportSteadyAllocations(state, 1, parse);
  std::uint64_t packets = 0;
  for (auto _ : state) {
    parse();
    ++packets;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
}
BENCHMARK(BM_Parse_CapturedMix);
#endif

// One NFQNL_MSG_VERDICT per packet, each its own buffer (one send each).
void BM_Encode_SingleVerdict(benchmark::State& state) {
  std::array<std::uint8_t, 256> buffer{};
  std::uint32_t id = 0;
  auto encode = [&] {
    auto size = verdictd::queueio::EncodeVerdict(buffer, kQueue, ++id, Verdict::Accept(), 0);
    benchmark::DoNotOptimize(size);
    benchmark::ClobberMemory();
  };
  ReportSteadyAllocations(state, 1, encode);
  id = 0;
  for (auto _ : state) encode();
  state.SetItemsProcessed(static_cast<std::int64_t>(id));
}
BENCHMARK(BM_Encode_SingleVerdict);

// One NFQNL_MSG_VERDICT_BATCH covering range(0) packets.
void BM_Encode_BatchVerdict(benchmark::State& state) {
  const auto covered = static_cast<std::uint32_t>(state.range(0));
  std::array<std::uint8_t, 256> buffer{};
  // The packet id wraps at 2^32 as the kernel's does; the packets covered are
  // counted in 64 bits, or /256 would report the wrapped id.
  std::uint32_t id = 0;
  std::uint64_t packets = 0;
  auto encode = [&] {
    id += covered;
    packets += covered;
    auto size = verdictd::queueio::EncodeBatchVerdict(buffer, kQueue, id, Verdict::Accept(), 0);
    benchmark::DoNotOptimize(size);
    benchmark::ClobberMemory();
  };
  ReportSteadyAllocations(state, covered, encode);
  id = 0;
  packets = 0;
  for (auto _ : state) encode();
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
}
BENCHMARK(BM_Encode_BatchVerdict)->Arg(1)->Arg(64)->Arg(256);

// range(0) NFQNL_MSG_VERDICT messages packed into one buffer (one send),
// what the batcher does when verdicts differ or carry marks.
void BM_Encode_ManyVerdictsOneBuffer(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint8_t> buffer(count * verdictd::queueio::MaxVerdictMessageSize(0));
  Verdict marked = Verdict::Accept();
  marked.set_mark = true;
  marked.mark = 42;
  std::uint32_t id = 0;
  auto encode = [&] {
    std::size_t used = 0;
    for (std::size_t i = 0; i < count; ++i) {
      used += verdictd::queueio::EncodeVerdict(std::span(buffer).subspan(used), kQueue, ++id,
                                               marked, 0);
    }
    benchmark::DoNotOptimize(used);
    benchmark::ClobberMemory();
  };
  ReportSteadyAllocations(state, count, encode);
  id = 0;
  for (auto _ : state) encode();
  state.SetItemsProcessed(static_cast<std::int64_t>(id));
}
BENCHMARK(BM_Encode_ManyVerdictsOneBuffer)->Arg(16)->Arg(64)->Arg(256);

// The batcher alone: range(0) consecutive accepts, then one flush.
void BM_Batcher_AddFlush(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  verdictd::queueio::VerdictBatcher batcher(kQueue, 64 * 1024, 256);
  NullSink sink;
  std::uint32_t id = 0;
  auto add_flush = [&] {
    for (std::size_t i = 0; i < count; ++i) batcher.Add(++id, Verdict::Accept());
    batcher.Flush(sink);
  };
  ReportSteadyAllocations(state, count, add_flush);
  const std::uint32_t first = id;
  for (auto _ : state) add_flush();
  state.SetItemsProcessed(static_cast<std::int64_t>(id - first));
  state.counters["messages_per_flush"] =
      static_cast<double>(batcher.stats().batch_messages + batcher.stats().single_messages) /
      static_cast<double>(batcher.stats().sends);
}
BENCHMARK(BM_Batcher_AddFlush)->Arg(1)->Arg(16)->Arg(64)->Arg(256);

// The per-packet accounting the worker does (packets, bytes, verdict kind).
void BM_Accounting_PerPacket(benchmark::State& state) {
  verdictd::metrics::WorkerCounters counters;
  auto account = [&] {
    counters.packets.Add();
    counters.bytes.Add(92);
    counters.verdicts[0].Add();
  };
  ReportSteadyAllocations(state, 1, account);
  std::uint64_t packets = 0;
  for (auto _ : state) {
    account();
    ++packets;
  }
  benchmark::DoNotOptimize(counters.packets.value());
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
}
BENCHMARK(BM_Accounting_PerPacket);

}  // namespace

BENCHMARK_MAIN();
