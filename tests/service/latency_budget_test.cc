// The latency budget and the exact latency histogram, on a fake clock: the
// source releases packets at scheduled arrival times, every receive costs
// fixed simulated time, sleeps overshoot by a fixed amount, and the sink
// records when each verdict was sent. No wall-clock time is measured, so the
// bounds below are exact, not thresholds.
#include <gtest/gtest.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernel_model.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/worker.h"
#include "verdictd/test_fixtures/netlink_messages.h"

namespace verdictd::service {
namespace {

using testing::KernelModel;

constexpr std::uint64_t kReceiveCostNs = 2'000;  // one receive's system call
constexpr std::uint64_t kPacketCostNs = 300;     // parse, decide, add, per packet
constexpr std::uint64_t kOvershootNs = 30'000;   // every sleep wakes this late
constexpr std::size_t kReceiveBatch = 32;

class FakeClock final : public WorkerClock {
 public:
  std::uint64_t Now() noexcept override { return now; }
  void Sleep(std::uint64_t ns) noexcept override {
    now += ns + (now < late_until ? late_overshoot_ns : kOvershootNs);
    ++sleeps;
  }
  std::uint64_t now = 1'000'000'000;
  std::size_t sleeps = 0;
  // Sleeps that start before `late_until` wake this late instead (a bad spell).
  std::uint64_t late_until = 0;
  std::uint64_t late_overshoot_ns = 0;
};

// Packets 1..N arriving every `gap_ns`; a blocking receive jumps the clock to
// the next arrival. Records each packet's arrival, receipt and send time.
class ScheduledQueue final : public queueio::PacketSource, public queueio::VerdictSink {
 public:
  ScheduledQueue(FakeClock& clock, std::size_t packets, std::uint64_t gap_ns)
      : clock_(clock), datagrams_(test_fixtures::BuildPacketDatagrams(1, packets, Packet())) {
    for (std::size_t i = 0; i < packets; ++i) arrival.push_back(clock.now + i * gap_ns);
    receipt.resize(packets);
    sent.resize(packets);
  }

  queueio::ReceiveStatus Receive(queueio::ReceiveBatch& batch, bool block, int) noexcept override {
    clock_.now += kReceiveCostNs;
    if (next_ == arrival.size()) return queueio::ReceiveStatus::kWouldBlock;
    if (arrival[next_] > clock_.now) {
      if (!block) return queueio::ReceiveStatus::kWouldBlock;
      clock_.now = arrival[next_];
    }
    out_.clear();
    const std::size_t first = next_;
    while (next_ < arrival.size() && arrival[next_] <= clock_.now && out_.size() < kReceiveBatch) {
      out_.push_back({datagrams_[next_++], false});
    }
    // The batch's work happens after the receipt time the worker reads; it
    // is charged here, before that read, which only makes waits longer.
    clock_.now += kPacketCostNs * out_.size();
    for (std::size_t i = first; i < next_; ++i) receipt[i] = clock_.now;
    batch.datagrams = out_;
    return queueio::ReceiveStatus::kOk;
  }

  queueio::SendStatus Send(std::span<const std::uint8_t> messages) noexcept override {
    // What the kernel reads: a batch verdict covers every id <= its own.
    const auto verdicts = test_fixtures::DecodeVerdicts(messages);
    if (!verdicts) return queueio::SendStatus::kOk;  // KernelModel reports it below
    for (const test_fixtures::DecodedVerdict& v : *verdicts) {
      if (v.id == 0 || v.id > sent.size()) continue;
      if (v.type == NFQNL_MSG_VERDICT_BATCH) {
        for (std::size_t i = sent_upto_; i < v.id; ++i) {
          if (sent[i] == 0) sent[i] = clock_.now;
        }
      } else if (sent[v.id - 1] == 0) {
        sent[v.id - 1] = clock_.now;
      }
    }
    while (sent_upto_ < sent.size() && sent[sent_upto_] != 0) ++sent_upto_;
    buffers.emplace_back(messages.begin(), messages.end());
    return queueio::SendStatus::kOk;
  }

  bool all_sent() const { return sent_upto_ == arrival.size(); }

  std::vector<std::uint64_t> arrival, receipt, sent;
  std::vector<std::vector<std::uint8_t>> buffers;

 private:
  static test_fixtures::SyntheticPacket Packet() {
    test_fixtures::SyntheticPacket packet;
    packet.hook = NF_INET_FORWARD;
    packet.payload = test_fixtures::FillerPayload(60);
    return packet;
  }
  FakeClock& clock_;
  std::vector<std::vector<std::uint8_t>> datagrams_;
  std::vector<queueio::Datagram> out_;
  std::size_t next_ = 0;
  std::size_t sent_upto_ = 0;
};

struct SimResult {
  std::uint64_t max_wait_ns = 0;     // receipt -> send, largest
  std::uint64_t max_transit_ns = 0;  // arrival -> send, largest
  std::uint64_t sum_wait_ns = 0;
  std::size_t sleeps = 0;
  std::size_t sends = 0;
};

SimResult Simulate(std::uint32_t budget_us, std::uint64_t gap_ns, std::size_t packets,
             metrics::WorkerCounters& counters) {
  FakeClock clock;
  ScheduledQueue queue(clock, packets, gap_ns);
  config::Config config;
  PolicyExchange exchange(BuildPolicy(config, 1, 1), 1);
  WorkerOptions options;
  options.batch_size = 256;
  options.flush_interval_us = 1000;
  options.latency_budget_us = budget_us;
  options.receive_batch = kReceiveBatch;
  options.clock = &clock;
  Worker worker(options, queue, queue, exchange, counters);
  for (std::size_t i = 0; i < 10 * packets + 100 && !queue.all_sent(); ++i) worker.RunOnce(true);
  EXPECT_TRUE(queue.all_sent()) << "budget " << budget_us << " us, gap " << gap_ns << " ns";

  KernelModel kernel;
  kernel.QueueRange(1, packets);
  kernel.ApplyAll(queue.buffers);
  EXPECT_TRUE(kernel.problems().empty());
  EXPECT_TRUE(kernel.still_queued().empty());

  SimResult run;
  for (std::size_t i = 0; i < packets; ++i) {
    run.max_wait_ns = std::max(run.max_wait_ns, queue.sent[i] - queue.receipt[i]);
    run.max_transit_ns = std::max(run.max_transit_ns, queue.sent[i] - queue.arrival[i]);
    run.sum_wait_ns += queue.sent[i] - queue.receipt[i];
  }
  run.sleeps = clock.sleeps;
  run.sends = queue.buffers.size();
  return run;
}

// One batch's processing: a receive and a full batch of packets.
constexpr std::uint64_t kBatchNs = kReceiveCostNs + kReceiveBatch * kPacketCostNs;

TEST(LatencyBudget, no_verdict_waits_longer_than_the_budget_plus_one_batch) {
  // 1 kpps .. 2 Mpps (the last one faster than the worker: an overloaded queue).
  const std::uint64_t gaps_ns[] = {1'000'000, 100'000, 20'000, 6'667, 2'000, 500};
  for (const std::uint32_t budget_us : {0u, 25u, 50u, 100u, 250u, 1000u}) {
    for (const std::uint64_t gap : gaps_ns) {
      // At least 60 ms of arrivals: the worker's rate window (20 ms) fills.
      const std::size_t packets = std::max<std::size_t>(200, 60'000'000 / gap);
      metrics::WorkerCounters counters;
      const SimResult run = Simulate(budget_us, gap, packets, counters);
      const std::uint64_t budget = std::uint64_t{budget_us} * 1000;
      SCOPED_TRACE("budget " + std::to_string(budget_us) + " us, gap " + std::to_string(gap) +
                   " ns");
      // Receipt to send (what the histogram records), exactly.
      EXPECT_LE(run.max_wait_ns, budget + kBatchNs);
      // Arrival to send, pauses included, where the worker keeps up.
      if (gap * kReceiveBatch > kBatchNs) {
        EXPECT_LE(run.max_transit_ns, budget + kBatchNs + kReceiveCostNs);
      }
      // The exact histogram: one observation per packet, the exact sum, and
      // nothing above the bucket of budget + one batch.
      const metrics::LatencyHistogram& h = counters.verdict_latency;
      EXPECT_EQ(h.count(), packets);
      EXPECT_EQ(h.sum_nanoseconds(), run.sum_wait_ns);
      const int limit = metrics::LatencyHistogram::BucketIndex(budget + kBatchNs);
      for (int k = limit + 1; k <= metrics::LatencyHistogram::kBuckets; ++k) {
        EXPECT_EQ(h.bucket(k), 0u) << "bucket " << k;
      }
    }
  }
}

TEST(LatencyBudget, budget_zero_never_pauses_and_sends_every_receive) {
  metrics::WorkerCounters counters;
  const SimResult run = Simulate(0, 6'667, 20'000, counters);
  EXPECT_EQ(run.sleeps, 0u);
  EXPECT_LE(run.max_wait_ns, kBatchNs);
}

TEST(LatencyBudget, a_fast_queue_pauses_within_the_budget_and_a_slow_one_blocks) {
  metrics::WorkerCounters fast_counters;
  // 150 kpps, 250 us budget: pauses that gather packets, far fewer sends
  // than packets.
  const SimResult fast = Simulate(250, 6'667, 20'000, fast_counters);
  EXPECT_GT(fast.sleeps, 0u);
  EXPECT_LT(fast.sends * 4, std::size_t{20'000});
  EXPECT_LE(fast.max_transit_ns, 250'000 + kBatchNs + kReceiveCostNs);
  // 1 kpps: nothing to gather within the budget; every packet is answered
  // at once, no pause.
  metrics::WorkerCounters slow_counters;
  const SimResult slow = Simulate(250, 1'000'000, 200, slow_counters);
  EXPECT_EQ(slow.sleeps, 0u);
  EXPECT_EQ(slow.sends, std::size_t{200});
}

TEST(LatencyBudget, the_pause_allows_for_the_measured_overshoot) {
  metrics::WorkerCounters counters;
  FakeClock clock;
  ScheduledQueue queue(clock, 20'000, 6'667);
  config::Config config;
  PolicyExchange exchange(BuildPolicy(config, 1, 1), 1);
  WorkerOptions options;
  options.latency_budget_us = 250;
  options.receive_batch = kReceiveBatch;
  options.clock = &clock;
  Worker worker(options, queue, queue, exchange, counters);
  for (int i = 0; i < 200'000 && !queue.all_sent(); ++i) worker.RunOnce(true);
  ASSERT_TRUE(queue.all_sent());
  ASSERT_GT(clock.sleeps, 0u);
  // The estimate converged on the fake clock's overshoot (from the initial 50 us).
  EXPECT_GE(worker.sleep_overshoot_ns(), kOvershootNs - kOvershootNs / 16);
  EXPECT_LE(worker.sleep_overshoot_ns(), 50'000u);
}

// A spell of late wakes long enough to fill every sample of the estimate
// with overshoots the budget cannot absorb rules the pause out; no pause
// then measures it again. The estimate must not stand for good: once the
// spell is over the worker pauses again, and the estimate comes back to
// the clock's real overshoot.
TEST(LatencyBudget, a_spell_of_late_wakes_does_not_rule_out_the_pause_for_good) {
  metrics::WorkerCounters counters;
  FakeClock clock;
  clock.late_until = clock.now + 200'000'000;  // the first 200 ms
  clock.late_overshoot_ns = 400'000;
  // 150 kpps for 3 s of simulated time.
  ScheduledQueue queue(clock, 450'000, 6'667);
  config::Config config;
  PolicyExchange exchange(BuildPolicy(config, 1, 1), 1);
  WorkerOptions options;
  options.latency_budget_us = 100;
  options.receive_batch = kReceiveBatch;
  options.clock = &clock;
  Worker worker(options, queue, queue, exchange, counters);
  // The longest stretch without a pause, the sleeps before it and when it ended.
  std::uint64_t longest_gap_ns = 0;
  std::size_t sleeps_before_gap = 0;
  std::uint64_t gap_end = 0;
  std::uint64_t last_sleep_at = clock.now;
  std::size_t sleeps_seen = 0;
  for (int i = 0; i < 2'000'000 && !queue.all_sent(); ++i) {
    worker.RunOnce(true);
    if (clock.sleeps == sleeps_seen) continue;
    if (clock.now - last_sleep_at > longest_gap_ns) {
      longest_gap_ns = clock.now - last_sleep_at;
      sleeps_before_gap = sleeps_seen;
      gap_end = clock.now;
    }
    sleeps_seen = clock.sleeps;
    last_sleep_at = clock.now;
  }
  ASSERT_TRUE(queue.all_sent());
  // The spell ruled the pause out for a stretch (the estimate stood)...
  EXPECT_GT(longest_gap_ns, 100'000'000u);
  EXPECT_GT(sleeps_before_gap, 0u);
  EXPECT_GE(gap_end, clock.late_until);
  // ...and after it the worker paused again, to the end of the run, with
  // the clock's real overshoot measured.
  EXPECT_GT(clock.sleeps, sleeps_before_gap + 1000);
  EXPECT_LT(clock.now - last_sleep_at, 1'000'000u);
  EXPECT_LE(worker.sleep_overshoot_ns(), 50'000u);
  EXPECT_GE(worker.sleep_overshoot_ns(), kOvershootNs - kOvershootNs / 16);
}

}  // namespace
}  // namespace verdictd::service
