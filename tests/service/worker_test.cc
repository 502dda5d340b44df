#include "verdictd/service/worker.h"

#include <gtest/gtest.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "kernel_model.h"
#include "verdictd/queueio/memory_queue.h"
#include "verdictd/queueio/verdict_encoder.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/queue_plan.h"
#include "verdictd/test_fixtures/netlink_messages.h"

namespace verdictd::service {
namespace {

using test_fixtures::BuildPacketMessage;
using test_fixtures::FillerPayload;
using test_fixtures::SyntheticPacket;
using testing::KernelModel;

// The packet these tests feed: `payload_size` filler bytes on the forward
// hook (the worker under a rule-less policy does not read the payload).
SyntheticPacket Packet(std::uint32_t id, std::size_t payload_size = 60) {
  SyntheticPacket packet;
  packet.id = id;
  packet.hook = NF_INET_FORWARD;
  packet.payload = FillerPayload(payload_size);
  return packet;
}

// Datagrams of one such packet each, ids first..first+count-1.
std::vector<std::vector<std::uint8_t>> PacketDatagrams(std::uint32_t first, std::size_t count) {
  return test_fixtures::BuildPacketDatagrams(first, count, Packet(0));
}

std::shared_ptr<const Policy> PolicyWith(config::VerdictKind kind, std::uint64_t generation,
                                         config::VerdictKind unparseable = config::VerdictKind::kAccept) {
  config::Config config;
  config.verdict.default_verdict.kind = kind;
  config.verdict.unparseable_verdict.kind = unparseable;
  return BuildPolicy(config, 1, generation);
}

WorkerOptions Options(std::size_t batch_size, std::uint32_t flush_us) {
  WorkerOptions options;
  options.index = 0;
  options.queue_num = 0;
  options.batch_size = batch_size;
  options.flush_interval_us = flush_us;
  options.latency_budget_us = flush_us;  // the bound in force is the smaller of the two
  return options;
}

// A clock that never moves: for tests whose counts must not depend on how
// long the machine takes between two calls (a verdict held under a 100 us
// budget is flushed early on a slow, busy run otherwise).
class StoppedClock final : public WorkerClock {
 public:
  std::uint64_t Now() noexcept override { return 1'000'000'000; }
  void Sleep(std::uint64_t) noexcept override {}
};

// Feeds fresh, increasing packet ids forever (`per_receive` per call) and
// runs `on_receive` inside Receive(), as if it happened while the worker
// was blocked in the kernel.
class GeneratorSource final : public queueio::PacketSource {
 public:
  explicit GeneratorSource(std::size_t per_receive) : per_receive_(per_receive) {}
  queueio::ReceiveStatus Receive(queueio::ReceiveBatch& batch, bool, int) noexcept override {
    if (on_receive) on_receive();
    storage_ = PacketDatagrams(next_id_, per_receive_);
    next_id_ += static_cast<std::uint32_t>(per_receive_);
    datagrams_.clear();
    for (const auto& d : storage_) datagrams_.push_back({d, false});
    batch.datagrams = datagrams_;
    ++receives;
    return queueio::ReceiveStatus::kOk;
  }
  std::function<void()> on_receive;
  std::size_t receives = 0;
  std::uint32_t next_id() const { return next_id_; }

 private:
  std::size_t per_receive_;
  std::uint32_t next_id_ = 1;
  std::vector<std::vector<std::uint8_t>> storage_;
  std::vector<queueio::Datagram> datagrams_;
};

// Runs RunOnce until the source would block (all scripted packets consumed and flushed).
void RunUntilIdle(Worker& worker) {
  for (int i = 0; i < 100000; ++i) {
    if (worker.RunOnce(false) == queueio::ReceiveStatus::kWouldBlock) return;
  }
  FAIL() << "source never ran dry";
}

TEST(Worker, gives_every_packet_the_default_verdict_exactly_once) {
  constexpr std::size_t kPackets = 1000;
  queueio::MemoryQueue queue(PacketDatagrams(1, kPackets), 64, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(256, 1'000'000), queue, queue, exchange, counters);
  RunUntilIdle(worker);

  KernelModel kernel;
  kernel.QueueRange(1, kPackets);
  kernel.ApplyAll(queue.sent());
  EXPECT_TRUE(kernel.problems().empty()) << kernel.problems().front();
  EXPECT_TRUE(kernel.still_queued().empty());
  ASSERT_EQ(kernel.verdicts().size(), kPackets);
  for (const auto& [id, code] : kernel.verdicts()) EXPECT_EQ(code, NF_ACCEPT) << id;
  EXPECT_EQ(counters.packets.value(), kPackets);
  EXPECT_EQ(counters.verdicts[0].value(), kPackets);
  EXPECT_EQ(worker.pending(), 0u);
}

TEST(Worker, batches_verdicts_into_few_sends) {
  constexpr std::size_t kPackets = 1024;
  queueio::MemoryQueue queue(PacketDatagrams(1, kPackets), 64, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kDrop, 1), 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(256, 1'000'000), queue, queue, exchange, counters);
  RunUntilIdle(worker);

  // 1024 packets, 256 verdicts per flush: 4 sends, each one batch message.
  EXPECT_EQ(queue.send_calls(), 4u);
  EXPECT_EQ(counters.batcher.sends.load(), 4u);
  KernelModel kernel;
  kernel.QueueRange(1, kPackets);
  kernel.ApplyAll(queue.sent());
  EXPECT_TRUE(kernel.problems().empty());
  EXPECT_EQ(kernel.batch_messages(), 4u);
  ASSERT_EQ(kernel.verdicts().size(), kPackets);
  for (const auto& [id, code] : kernel.verdicts()) EXPECT_EQ(code, NF_DROP) << id;
  EXPECT_EQ(counters.verdicts[1].value(), kPackets);
}

TEST(Worker, flushes_when_the_receive_would_block) {
  queueio::MemoryQueue queue(PacketDatagrams(1, 10), 64, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(256, 1'000'000), queue, queue, exchange, counters);
  EXPECT_EQ(worker.RunOnce(false), queueio::ReceiveStatus::kOk);
  EXPECT_EQ(worker.pending(), 10u);  // held: batch not full, bound not reached
  EXPECT_EQ(queue.send_calls(), 0u);
  EXPECT_EQ(worker.RunOnce(false), queueio::ReceiveStatus::kWouldBlock);
  EXPECT_EQ(worker.pending(), 0u);
  EXPECT_EQ(queue.send_calls(), 1u);
}

TEST(Worker, holds_verdicts_within_the_flush_bound_under_steady_load) {
  GeneratorSource source(8);
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  // A bound no test run reaches and a batch that never fills.
  Worker worker(Options(1'000'000, 3'600'000'000u), source, sink, exchange, counters);
  for (int i = 0; i < 50; ++i) worker.RunOnce(true);
  EXPECT_EQ(worker.pending(), 400u);
  EXPECT_EQ(sink.send_calls(), 0u);
}

TEST(Worker, flushes_after_the_flush_interval_under_steady_load) {
  GeneratorSource source(8);
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  constexpr std::uint32_t kFlushUs = 2000;
  Worker worker(Options(1'000'000, kFlushUs), source, sink, exchange, counters);
  const auto start = std::chrono::steady_clock::now();
  worker.RunOnce(true);  // the oldest pending verdict is received no earlier than `start`
  while (sink.send_calls() == 0) {
    worker.RunOnce(true);
    ASSERT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30)) << "never flushed";
  }
  // Flushed by the time bound, not before it (source never blocks, batch never fills).
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::microseconds(kFlushUs));
  EXPECT_EQ(worker.pending(), 0u);
  KernelModel kernel;
  kernel.QueueRange(1, source.next_id() - 1);
  kernel.ApplyAll(sink.sent());
  EXPECT_TRUE(kernel.problems().empty());
  EXPECT_TRUE(kernel.still_queued().empty());
}

TEST(Worker, flushes_every_batch_with_a_zero_interval) {
  GeneratorSource source(8);
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(1'000'000, 0), source, sink, exchange, counters);
  for (int i = 0; i < 5; ++i) {
    worker.RunOnce(true);
    EXPECT_EQ(worker.pending(), 0u);
  }
  EXPECT_EQ(sink.send_calls(), 5u);
}

TEST(Worker, applies_a_new_policy_to_the_packets_that_woke_it) {
  GeneratorSource source(4);
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(256, 0), source, sink, exchange, counters);
  worker.RunOnce(true);  // ids 1..4 under generation 1 (accept)
  // The reload lands while the worker is inside the receive call.
  source.on_receive = [&] { exchange.Publish(PolicyWith(config::VerdictKind::kDrop, 2)); };
  worker.RunOnce(true);  // ids 5..8 must already see generation 2 (drop)
  source.on_receive = nullptr;
  worker.Flush();  // generation 2 also brought the default flush interval

  KernelModel kernel;
  kernel.QueueRange(1, 8);
  kernel.ApplyAll(sink.sent());
  ASSERT_TRUE(kernel.problems().empty()) << kernel.problems().front();
  ASSERT_EQ(kernel.verdicts().size(), 8u);
  for (std::uint32_t id = 1; id <= 4; ++id) EXPECT_EQ(kernel.verdicts().at(id), NF_ACCEPT) << id;
  for (std::uint32_t id = 5; id <= 8; ++id) EXPECT_EQ(kernel.verdicts().at(id), NF_DROP) << id;
  EXPECT_EQ(exchange.generation(), 2u);
}

TEST(Worker, takes_batching_settings_from_a_new_policy_generation) {
  GeneratorSource source(16);
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  StoppedClock clock;
  WorkerOptions options = Options(256, 1'000'000);
  options.batch_capacity = 1024;
  options.clock = &clock;
  Worker worker(options, source, sink, exchange, counters);
  worker.RunOnce(true);  // ids 1..16 held: batch 256, flush after a second
  EXPECT_EQ(worker.pending(), 16u);
  EXPECT_EQ(sink.send_calls(), 0u);

  config::Config config;
  config.verdict.batch_size = 4;
  config.verdict.flush_interval_us = 500;
  config.verdict.busy_poll_us = 7;
  exchange.Publish(BuildPolicy(config, 1, 2));
  worker.RunOnce(true);  // ids 17..32 under batch size 4
  EXPECT_EQ(worker.batch_size(), 4u);
  EXPECT_EQ(worker.flush_interval_us(), 500u);
  EXPECT_EQ(worker.busy_poll_us(), 7u);
  // The 16 held verdicts went out at the first add over the new limit, then
  // one send per 4 verdicts; the last 4 wait.
  EXPECT_EQ(sink.send_calls(), 4u);
  EXPECT_EQ(worker.pending(), 4u);

  // Beyond the capacity the tables were sized for: clamped, never overrun.
  config.verdict.batch_size = 100000;
  exchange.Publish(BuildPolicy(config, 1, 3));
  worker.RunOnce(true);
  EXPECT_EQ(worker.batch_size(), 1024u);
  worker.Flush();

  KernelModel kernel;
  kernel.QueueRange(1, 48);
  kernel.ApplyAll(sink.sent());
  ASSERT_TRUE(kernel.problems().empty()) << kernel.problems().front();
  EXPECT_EQ(kernel.verdicts().size(), 48u);
}

// Accepts everything and records which decider handed it its state.
class RecordingDecider final : public Decider {
 public:
  queueio::Verdict Decide(const queueio::PacketView&, std::uint64_t) noexcept override {
    ++decided;
    return queueio::Verdict::Accept();
  }
  void TakeStateFrom(Decider& previous) noexcept override {
    taken_from = &previous;
    decided_before_hand_over = decided;
  }
  Decider* taken_from = nullptr;
  int decided = 0;
  int decided_before_hand_over = -1;
};

std::shared_ptr<const Policy> RecordingPolicy(std::uint64_t generation) {
  auto policy = std::make_shared<Policy>();
  policy->generation = generation;
  policy->deciders.push_back(std::make_unique<RecordingDecider>());
  return policy;
}

TEST(Worker, a_new_policys_decider_takes_the_previous_deciders_state_first) {
  GeneratorSource source(4);
  queueio::MemoryQueue sink({}, 1, false);
  auto first = RecordingPolicy(1);
  auto* first_decider = static_cast<RecordingDecider*>(first->deciders[0].get());
  PolicyExchange exchange(first, 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(256, 0), source, sink, exchange, counters);
  worker.RunOnce(true);
  EXPECT_EQ(first_decider->decided, 4);
  EXPECT_EQ(first_decider->taken_from, nullptr);

  auto second = RecordingPolicy(2);
  auto* second_decider = static_cast<RecordingDecider*>(second->deciders[0].get());
  exchange.Publish(second);
  worker.RunOnce(true);
  EXPECT_EQ(second_decider->taken_from, first_decider);
  EXPECT_EQ(second_decider->decided_before_hand_over, 0);
  EXPECT_EQ(second_decider->decided, 4);
  worker.RunOnce(true);  // same generation: no second hand-over
  EXPECT_EQ(second_decider->taken_from, first_decider);
  // The first policy was kept alive until the hand-over was reported.
  exchange.Reclaim();
  EXPECT_EQ(first.use_count(), 1) << "the exchange still holds the old policy after the report";
}

// Accepts every packet with its id as the mark: no two verdicts fold, each
// is a single 40-byte message.
class MarkingDecider final : public Decider {
 public:
  queueio::Verdict Decide(const queueio::PacketView& packet, std::uint64_t) noexcept override {
    queueio::Verdict verdict = queueio::Verdict::Accept();
    verdict.set_mark = true;
    verdict.mark = packet.id;
    return verdict;
  }
};

// A MemoryQueue whose sends are limited as a netlink socket's are: a send
// larger than max_send_bytes() fails (EMSGSIZE) and its verdicts are lost.
class SendBufferQueue final : public queueio::VerdictSink {
 public:
  explicit SendBufferQueue(std::size_t limit) : limit_(limit) {}
  queueio::SendStatus Send(std::span<const std::uint8_t> messages) noexcept override {
    largest = std::max(largest, messages.size());
    if (messages.size() > limit_) {
      ++too_large;
      return queueio::SendStatus::kError;
    }
    return recorder.Send(messages);
  }
  std::size_t max_send_bytes() const noexcept override { return limit_; }

  queueio::MemoryQueue recorder{{}, 1, false};
  std::size_t largest = 0;
  std::size_t too_large = 0;

 private:
  std::size_t limit_;
};

TEST(Worker, a_large_batch_of_mark_verdicts_flushes_early_instead_of_failing_with_emsgsize) {
  // verdict.batch_size at its maximum, the verdict buffer sized as the daemon
  // sizes it (64 bytes a verdict: 4 MiB), and a socket with a 256 KiB send buffer.
  constexpr std::size_t kPackets = 65536;
  config::VerdictSection verdict;
  verdict.batch_size = kPackets;
  verdict.flush_interval_us = 1'000'000;
  verdict.latency_budget_us = 1'000'000;
  WorkerOptions options = MakeWorkerOptions(verdict, 0, 0);
  ASSERT_GT(options.send_buffer_bytes, 256u * 1024);
  queueio::MemoryQueue source(PacketDatagrams(1, kPackets), 1024, false);
  SendBufferQueue sink(256 * 1024 - 64);
  auto policy = std::make_shared<Policy>();
  policy->generation = 1;
  policy->deciders.push_back(std::make_unique<MarkingDecider>());
  PolicyExchange exchange(policy, 1);
  metrics::WorkerCounters counters;
  Worker worker(options, source, sink, exchange, counters);
  RunUntilIdle(worker);

  EXPECT_EQ(sink.too_large, 0u) << "a send of " << sink.largest << " bytes";
  EXPECT_LE(sink.largest, 256u * 1024 - 64);
  EXPECT_GT(sink.recorder.send_calls(), 1u);  // the buffer, not the batch size, flushed
  EXPECT_EQ(counters.send_errors.value(), 0u);
  EXPECT_EQ(counters.batcher.failed_verdicts.load(), 0u);
  KernelModel kernel;
  kernel.QueueRange(1, kPackets);
  kernel.ApplyAll(sink.recorder.sent());
  ASSERT_TRUE(kernel.problems().empty()) << kernel.problems().front();
  EXPECT_TRUE(kernel.still_queued().empty());
  EXPECT_EQ(kernel.verdicts().size(), kPackets);
  EXPECT_EQ(counters.batcher.single_messages.load(), kPackets);
}

TEST(Worker, gives_malformed_messages_with_an_id_the_unparseable_verdict) {
  std::vector<std::vector<std::uint8_t>> script;
  script.push_back(BuildPacketMessage(Packet(1)));
  // Cut inside the payload: the packet header (and so the id) stays readable.
  script.push_back(test_fixtures::CutMessage(BuildPacketMessage(Packet(2, 200)), 100));
  SyntheticPacket no_header = Packet(0, 40);
  no_header.with_packet_hdr = false;
  script.push_back(BuildPacketMessage(no_header));  // no id: nothing to answer
  script.push_back(test_fixtures::BuildErrorMessage(-ENOENT));  // from the kernel
  script.push_back(BuildPacketMessage(Packet(3)));
  queueio::MemoryQueue queue(std::move(script), 64, false);
  PolicyExchange exchange(
      PolicyWith(config::VerdictKind::kAccept, 1, config::VerdictKind::kDrop), 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(256, 1'000'000), queue, queue, exchange, counters);
  RunUntilIdle(worker);

  KernelModel kernel;
  kernel.QueueRange(1, 3);
  kernel.ApplyAll(queue.sent());
  ASSERT_TRUE(kernel.problems().empty()) << kernel.problems().front();
  ASSERT_EQ(kernel.verdicts().size(), 3u);
  EXPECT_EQ(kernel.verdicts().at(1), NF_ACCEPT);
  EXPECT_EQ(kernel.verdicts().at(2), NF_DROP);
  EXPECT_EQ(kernel.verdicts().at(3), NF_ACCEPT);
  EXPECT_EQ(counters.packets.value(), 2u);
  EXPECT_EQ(counters.malformed.value(), 2u);
  EXPECT_EQ(counters.unparseable_verdicts.value(), 1u);
  EXPECT_EQ(counters.kernel_errors.value(), 1u);
}

TEST(Worker, counts_gso_packets_and_the_longest_packet) {
  std::vector<std::vector<std::uint8_t>> script;
  SyntheticPacket gso = Packet(2, 9000);
  gso.skb_info = NFQA_SKB_GSO;
  SyntheticPacket cut_by_copy_range = Packet(3, 200);
  cut_by_copy_range.cap_len = 30000;  // the packet's original length
  script.push_back(BuildPacketMessage(Packet(1, 100)));
  script.push_back(BuildPacketMessage(gso));
  script.push_back(BuildPacketMessage(cut_by_copy_range));
  queueio::MemoryQueue queue(std::move(script), 64, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(256, 1'000'000), queue, queue, exchange, counters);
  RunUntilIdle(worker);
  EXPECT_EQ(counters.gso_packets.value(), 1u);
  EXPECT_EQ(counters.max_packet_length.value(), 30000u);
}

// Answers "would block" to the first `empty_calls` receives, then one packet;
// records whether each call asked to block.
class CountingSource final : public queueio::PacketSource {
 public:
  explicit CountingSource(int empty_calls) : empty_calls_(empty_calls) {}
  queueio::ReceiveStatus Receive(queueio::ReceiveBatch& batch, bool block, int) noexcept override {
    blocking_flags.push_back(block);
    if (static_cast<int>(blocking_flags.size()) <= empty_calls_) {
      return queueio::ReceiveStatus::kWouldBlock;
    }
    datagram_ = BuildPacketMessage(Packet(1));
    out_ = {std::span<const std::uint8_t>(datagram_), false};
    batch.datagrams = std::span<const queueio::Datagram>(&out_, 1);
    return queueio::ReceiveStatus::kOk;
  }
  std::vector<bool> blocking_flags;

 private:
  int empty_calls_;
  std::vector<std::uint8_t> datagram_;
  queueio::Datagram out_;
};

TEST(Worker, busy_polls_without_blocking_in_low_latency_mode) {
  CountingSource source(5);
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  WorkerOptions options = Options(256, 1000);
  options.busy_poll_us = 60'000'000;  // far longer than five calls take
  Worker worker(options, source, sink, exchange, counters);
  EXPECT_EQ(worker.RunOnce(true), queueio::ReceiveStatus::kOk);
  EXPECT_EQ(source.blocking_flags, std::vector<bool>(6, false));
  EXPECT_EQ(counters.packets.value(), 1u);
}

TEST(Worker, blocks_at_once_without_busy_poll) {
  CountingSource source(0);
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  StoppedClock clock;  // the pending verdict must still be pending at the second call
  WorkerOptions options = Options(256, 1000);
  options.clock = &clock;
  Worker worker(options, source, sink, exchange, counters);
  EXPECT_EQ(worker.RunOnce(true), queueio::ReceiveStatus::kOk);
  EXPECT_EQ(source.blocking_flags, std::vector<bool>{true});
  // A verdict is pending now: the next receive must not block.
  worker.RunOnce(true);
  EXPECT_EQ(source.blocking_flags.back(), false);
}

TEST(Worker, drains_everything_readable_when_stopped) {
  constexpr std::size_t kPackets = 500;
  queueio::MemoryQueue queue(PacketDatagrams(1, kPackets), 64, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(256, 1'000'000), queue, queue, exchange, counters);
  int drain_hook_calls = 0;
  std::size_t pending_at_hook = 99;
  worker.set_drain_hook([&] {
    ++drain_hook_calls;
    pending_at_hook = worker.pending();
  });
  worker.RequestStop();  // stop before the loop ever ran: only the drain receives
  EXPECT_EQ(worker.Run(), WorkerExit::kStopped);
  EXPECT_EQ(drain_hook_calls, 1);
  EXPECT_EQ(pending_at_hook, 0u);
  KernelModel kernel;
  kernel.QueueRange(1, kPackets);
  kernel.ApplyAll(queue.sent());
  EXPECT_TRUE(kernel.problems().empty());
  EXPECT_TRUE(kernel.still_queued().empty());
  EXPECT_EQ(kernel.verdicts().size(), kPackets);
}

// A source whose receive blocks (a condition variable) the way the kernel's does.
class BlockingQueue final : public queueio::PacketSource, public queueio::VerdictSink {
 public:
  void Push(std::vector<std::vector<std::uint8_t>> datagrams) {
    std::lock_guard lock(mutex_);
    for (auto& d : datagrams) script_.push_back(std::move(d));
    cv_.notify_all();
  }
  queueio::ReceiveStatus Receive(queueio::ReceiveBatch& batch, bool block,
                                 int timeout_ms) noexcept override {
    std::unique_lock lock(mutex_);
    if (block && next_ == script_.size()) {
      cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms < 0 ? 1000 : timeout_ms),
                   [&] { return next_ < script_.size(); });
    }
    if (next_ == script_.size()) return queueio::ReceiveStatus::kWouldBlock;
    out_.clear();
    while (next_ < script_.size() && out_.size() < 16) out_.push_back({script_[next_++], false});
    batch.datagrams = out_;
    return queueio::ReceiveStatus::kOk;
  }
  queueio::SendStatus Send(std::span<const std::uint8_t> messages) noexcept override {
    std::lock_guard lock(mutex_);
    sent_.emplace_back(messages.begin(), messages.end());
    cv_.notify_all();
    return queueio::SendStatus::kOk;
  }
  // Waits until `count` datagrams were received by the worker.
  void WaitConsumed(std::size_t count) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return next_ >= count && !sent_.empty(); });
  }
  std::vector<std::vector<std::uint8_t>> sent() {
    std::lock_guard lock(mutex_);
    return sent_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::vector<std::uint8_t>> script_;
  std::size_t next_ = 0;
  std::vector<queueio::Datagram> out_;
  std::vector<std::vector<std::uint8_t>> sent_;
};

TEST(WorkerThread, stop_while_blocked_drains_what_arrived_meanwhile) {
  BlockingQueue queue;
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  WorkerOptions options = Options(256, 1'000'000);
  options.stop_check_ms = 20;
  Worker worker(options, queue, queue, exchange, counters);
  queue.Push(PacketDatagrams(1, 100));
  std::thread thread([&] { EXPECT_EQ(worker.Run(), WorkerExit::kStopped); });
  queue.WaitConsumed(100);  // the worker received them and flushed at least once
  // These arrive after the worker last looked; the drain must still answer them.
  queue.Push(PacketDatagrams(101, 50));
  worker.RequestStop();
  thread.join();
  KernelModel kernel;
  kernel.QueueRange(1, 150);
  kernel.ApplyAll(queue.sent());
  EXPECT_TRUE(kernel.problems().empty());
  EXPECT_TRUE(kernel.still_queued().empty()) << kernel.still_queued().size() << " left";
  EXPECT_EQ(counters.packets.value(), 150u);
}

// A source that plays a script of receive results: batches of datagrams and
// failures (kError with an errno, kOverrun for ENOBUFS, kInterrupted for
// EINTR). Once the script is played it calls on_empty (once) and would block.
class ScriptedSource final : public queueio::PacketSource {
 public:
  struct Step {
    queueio::ReceiveStatus status;
    int error = 0;
    std::vector<std::vector<std::uint8_t>> datagrams;
  };
  void Packets(std::uint32_t first, std::size_t count) {
    steps_.push_back({queueio::ReceiveStatus::kOk, 0, PacketDatagrams(first, count)});
  }
  void Fail(queueio::ReceiveStatus status, int error, std::size_t times = 1) {
    for (std::size_t i = 0; i < times; ++i) steps_.push_back({status, error, {}});
  }
  queueio::ReceiveStatus Receive(queueio::ReceiveBatch& batch, bool, int) noexcept override {
    ++receives;
    if (next_ == steps_.size()) {
      if (on_empty) std::exchange(on_empty, nullptr)();
      return queueio::ReceiveStatus::kWouldBlock;
    }
    const Step& step = steps_[next_++];
    batch.last_errno = step.error;
    out_.clear();
    for (const auto& d : step.datagrams) out_.push_back({d, false});
    batch.datagrams = out_;
    return step.status;
  }
  std::function<void()> on_empty;
  std::size_t receives = 0;
  bool played() const { return next_ == steps_.size(); }

 private:
  std::vector<Step> steps_;
  std::size_t next_ = 0;
  std::vector<queueio::Datagram> out_;
};

// A sink that refuses every send, as a socket whose peer is gone would.
class RefusingSink final : public queueio::VerdictSink {
 public:
  queueio::SendStatus Send(std::span<const std::uint8_t>) noexcept override {
    ++calls;
    return queueio::SendStatus::kError;
  }
  std::size_t calls = 0;
};

TEST(WorkerErrors, a_receive_error_flushes_what_is_pending_counts_and_carries_on) {
  ScriptedSource source;
  source.Packets(1, 10);
  source.Fail(queueio::ReceiveStatus::kError, EIO);
  source.Packets(11, 5);
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  WorkerOptions options = Options(256, 1'000'000);
  options.max_consecutive_errors = 3;
  Worker worker(options, source, sink, exchange, counters);
  source.on_empty = [&] { worker.RequestStop(); };
  EXPECT_EQ(worker.Run(), WorkerExit::kStopped);
  EXPECT_TRUE(worker.fatal_reason().empty());
  EXPECT_EQ(counters.receive_errors.value(), 1u);
  EXPECT_EQ(counters.packets.value(), 15u);
  // The error sent the first ten at once instead of holding them.
  ASSERT_GE(sink.sent().size(), 2u);
  KernelModel first;
  first.QueueRange(1, 10);
  first.Apply(sink.sent().front());
  EXPECT_TRUE(first.still_queued().empty());
  KernelModel kernel;
  kernel.QueueRange(1, 15);
  kernel.ApplyAll(sink.sent());
  EXPECT_TRUE(kernel.problems().empty());
  EXPECT_TRUE(kernel.still_queued().empty());
}

TEST(WorkerErrors, gives_up_after_max_consecutive_receive_errors_and_says_why) {
  ScriptedSource source;
  source.Packets(1, 4);
  source.Fail(queueio::ReceiveStatus::kError, EBADF, 5);
  source.Packets(5, 4);  // never reached
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  WorkerOptions options = Options(256, 1'000'000);
  options.max_consecutive_errors = 5;
  Worker worker(options, source, sink, exchange, counters);
  EXPECT_EQ(worker.Run(), WorkerExit::kFatalError);
  EXPECT_EQ(worker.fatal_reason(), std::string("receive failed: ") + std::strerror(EBADF));
  EXPECT_EQ(counters.receive_errors.value(), 5u);
  // The packets before the errors got their verdicts; the drain after the
  // give-up still read what followed (the socket may be fine for a drain).
  KernelModel kernel;
  kernel.QueueRange(1, 8);
  kernel.ApplyAll(sink.sent());
  EXPECT_TRUE(kernel.problems().empty());
  EXPECT_TRUE(kernel.still_queued().empty()) << kernel.still_queued().size() << " left";
}

TEST(WorkerErrors, errors_between_successes_never_add_up_to_a_give_up) {
  ScriptedSource source;
  std::uint32_t id = 1;
  for (int round = 0; round < 10; ++round) {
    source.Fail(queueio::ReceiveStatus::kError, EIO, 4);  // one short of the limit
    source.Packets(id, 3);
    id += 3;
  }
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  WorkerOptions options = Options(256, 1'000'000);
  options.max_consecutive_errors = 5;
  Worker worker(options, source, sink, exchange, counters);
  source.on_empty = [&] { worker.RequestStop(); };
  EXPECT_EQ(worker.Run(), WorkerExit::kStopped);
  EXPECT_EQ(counters.receive_errors.value(), 40u);
  EXPECT_EQ(counters.packets.value(), 30u);
}

TEST(WorkerErrors, enobufs_and_interrupts_are_counted_or_ignored_never_fatal) {
  ScriptedSource source;
  source.Packets(1, 8);
  // Far more than the error limit: an overrun is the kernel losing messages
  // (counted), an interrupt is a signal; neither is the socket failing.
  source.Fail(queueio::ReceiveStatus::kOverrun, ENOBUFS, 20);
  source.Fail(queueio::ReceiveStatus::kInterrupted, EINTR, 20);
  source.Packets(9, 8);
  queueio::MemoryQueue sink({}, 1, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kDrop, 1), 1);
  metrics::WorkerCounters counters;
  WorkerOptions options = Options(256, 1'000'000);
  options.max_consecutive_errors = 3;
  Worker worker(options, source, sink, exchange, counters);
  source.on_empty = [&] { worker.RequestStop(); };
  EXPECT_EQ(worker.Run(), WorkerExit::kStopped);
  EXPECT_EQ(counters.enobufs.value(), 20u);
  EXPECT_EQ(counters.receive_errors.value(), 0u);
  EXPECT_EQ(counters.packets.value(), 16u);
  KernelModel kernel;
  kernel.QueueRange(1, 16);
  kernel.ApplyAll(sink.sent());
  EXPECT_TRUE(kernel.problems().empty());
  EXPECT_TRUE(kernel.still_queued().empty());
  for (const auto& [packet, code] : kernel.verdicts()) EXPECT_EQ(code, NF_DROP) << packet;
}

TEST(WorkerErrors, gives_up_when_sending_verdicts_keeps_failing) {
  ScriptedSource source;
  for (std::uint32_t id = 1; id <= 20; ++id) source.Packets(id, 1);
  RefusingSink sink;
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  WorkerOptions options = Options(1, 1'000'000);  // every verdict is its own send
  options.max_consecutive_errors = 4;
  Worker worker(options, source, sink, exchange, counters);
  EXPECT_EQ(worker.Run(), WorkerExit::kFatalError);
  EXPECT_EQ(worker.fatal_reason(), "sending verdicts keeps failing");
  // Packets kept arriving between the failed sends; they did not reset the count.
  EXPECT_GE(counters.send_errors.value(), 4u);
  EXPECT_GE(sink.calls, 4u);
}

// Packet ids are the kernel's 32-bit counter: after 0xffffffff comes 0.
TEST(WorkerIds, a_run_across_the_32_bit_wrap_is_one_batch_the_kernel_applies_to_all) {
  constexpr std::uint32_t kFirst = 0xffffff00u;
  constexpr std::size_t kPackets = 512;  // 0xffffff00 .. 0xffffffff, 0 .. 0xff
  queueio::MemoryQueue queue(PacketDatagrams(kFirst, kPackets), 64, false);
  PolicyExchange exchange(PolicyWith(config::VerdictKind::kAccept, 1), 1);
  metrics::WorkerCounters counters;
  Worker worker(Options(kPackets, 1'000'000), queue, queue, exchange, counters);
  RunUntilIdle(worker);
  ASSERT_EQ(queue.sent().size(), 1u);
  const auto messages = test_fixtures::DecodeVerdicts(queue.sent().front());
  ASSERT_TRUE(messages);
  ASSERT_EQ(messages->size(), 1u);
  EXPECT_EQ(messages->front().type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(messages->front().id, 0xffu);  // the last id, after the wrap
  KernelModel kernel;
  kernel.QueueRange(kFirst, kPackets);
  kernel.ApplyAll(queue.sent());
  EXPECT_TRUE(kernel.problems().empty()) << kernel.problems().front();
  EXPECT_TRUE(kernel.still_queued().empty()) << kernel.still_queued().size() << " left";
  EXPECT_EQ(kernel.verdicts().size(), kPackets);
  EXPECT_EQ(kernel.verdicts().count(0xffffffffu), 1u);
  EXPECT_EQ(kernel.verdicts().count(0u), 1u);
}

TEST(WorkerIds, the_kernel_model_stops_a_batch_at_the_first_later_id_across_the_wrap) {
  // What the kernel does with a batch verdict up to 0xffffffff when 0 and 1
  // (queued after it) are waiting too: they are after it, so not covered.
  KernelModel kernel;
  kernel.QueueRange(0xfffffffeu, 4);
  std::vector<std::uint8_t> buffer(256);
  const std::size_t n = queueio::EncodeBatchVerdict(buffer, 0, 0xffffffffu,
                                                    queueio::Verdict::Accept(), 1);
  ASSERT_GT(n, 0u);
  buffer.resize(n);
  kernel.Apply(buffer);
  EXPECT_TRUE(kernel.problems().empty());
  EXPECT_EQ(kernel.verdicts().size(), 2u);
  EXPECT_EQ(kernel.still_queued(), (std::set<std::uint32_t>{0u, 1u}));
}

}  // namespace
}  // namespace verdictd::service
