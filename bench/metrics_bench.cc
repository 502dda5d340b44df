// Per-packet accounting cost: what a worker adds to each packet for the
// metrics (packets, bytes, verdict kind, one latency observation), in ns per
// packet, against the same loop without accounting, in the same run.
//
//   build/bench/metrics_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// The ns/packet counter of BM_Accounting_Counters minus that of
// BM_Accounting_None is the cost of the metrics (BM_Accounting_ExactPerReceiveGroup:
// as the worker does it, with the exact histogram); BM_Accounting_PrometheusCpp
// shows what prometheus-cpp's own Counter and Histogram would cost instead.
#include <array>
#include <cstdint>
#include <random>

#include <benchmark/benchmark.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "verdictd/metrics/worker_counters.h"

namespace {

using verdictd::metrics::LatencyHistogram;
using verdictd::metrics::WorkerCounters;

constexpr std::size_t kBatch = 256;

// A batch of packets as a worker sees them: a length, a verdict kind and a
// receive-to-verdict latency spread over the histogram's range.
struct Packet {
  std::uint32_t length;
  std::uint32_t verdict;
  std::uint64_t latency_ns;
};

std::array<Packet, kBatch> MakeBatch() {
  std::array<Packet, kBatch> batch{};
  std::mt19937_64 random(42);
  std::uniform_int_distribution<std::uint32_t> length(40, 1500);
  std::uniform_int_distribution<std::uint32_t> verdict(0, 9);  // mostly accept
  std::lognormal_distribution<double> latency(11.0, 1.5);      // median ~60 us
  for (auto& p : batch) {
    p.length = length(random);
    const std::uint32_t v = verdict(random);
    p.verdict = v < 8 ? 0 : v - 7;  // 80% accept, 10% drop, 10% repeat
    p.latency_ns = static_cast<std::uint64_t>(latency(random));
  }
  return batch;
}

void SetCounters(benchmark::State& state) {
  const auto packets = static_cast<double>(state.iterations() * kBatch);
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
  // Packets per CPU second, inverted: seconds (printed as ns) per packet.
  state.counters["ns_per_packet"] =
      benchmark::Counter(packets, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// The loop alone: touch every packet's fields, no accounting.
void BM_Accounting_None(benchmark::State& state) {
  const auto batch = MakeBatch();
  std::uint64_t checksum = 0;
  for (auto _ : state) {
    for (const Packet& p : batch) {
      checksum += p.length + p.verdict + p.latency_ns;
      benchmark::DoNotOptimize(checksum);
    }
  }
  SetCounters(state);
}
BENCHMARK(BM_Accounting_None);

// What the worker does: three counters and one histogram observation.
void BM_Accounting_Counters(benchmark::State& state) {
  const auto batch = MakeBatch();
  WorkerCounters counters;
  std::uint64_t checksum = 0;
  for (auto _ : state) {
    for (const Packet& p : batch) {
      checksum += p.length + p.verdict + p.latency_ns;
      benchmark::DoNotOptimize(checksum);
      counters.packets.Add();
      counters.bytes.Add(p.length);
      counters.verdicts[p.verdict].Add();
      counters.verdict_latency.Observe(p.latency_ns);
    }
  }
  benchmark::DoNotOptimize(counters.packets.value());
  SetCounters(state);
}
BENCHMARK(BM_Accounting_Counters);

// The same with per-batch counting where the worker can (one add for the
// packet count, one histogram observation per batch for a batch latency).
void BM_Accounting_CountersPerBatch(benchmark::State& state) {
  const auto batch = MakeBatch();
  WorkerCounters counters;
  std::uint64_t checksum = 0;
  for (auto _ : state) {
    std::uint64_t bytes = 0;
    for (const Packet& p : batch) {
      checksum += p.length + p.verdict + p.latency_ns;
      benchmark::DoNotOptimize(checksum);
      bytes += p.length;
      counters.verdicts[p.verdict].Add();
    }
    counters.packets.Add(kBatch);
    counters.bytes.Add(bytes);
    counters.verdict_latency.Observe(batch[0].latency_ns, kBatch);
  }
  benchmark::DoNotOptimize(counters.packets.value());
  SetCounters(state);
}
BENCHMARK(BM_Accounting_CountersPerBatch);

// The exact histogram as the worker keeps it: every packet joins the group of
// its receive batch (a compare and an add), and each flush observes once per
// group with the group's count. Here a flush of 256 verdicts from 8 receive
// batches of 32 (a receive's usual size), with the counters of
// BM_Accounting_CountersPerBatch. Minus BM_Accounting_None: the cost.
void BM_Accounting_ExactPerReceiveGroup(benchmark::State& state) {
  constexpr std::size_t kPerReceive = 32;
  struct Group {
    std::uint64_t receipt_ns;
    std::uint32_t count;
  };
  const auto batch = MakeBatch();
  WorkerCounters counters;
  std::array<Group, kBatch + 1> groups{};
  std::uint64_t checksum = 0;
  std::uint64_t clock = 1'000'000'000;
  for (auto _ : state) {
    std::size_t group_count = 0;
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < kBatch; ++i) {
      const Packet& p = batch[i];
      const std::uint64_t receipt = clock + (i / kPerReceive) * 20'000;
      checksum += p.length + p.verdict + p.latency_ns;
      benchmark::DoNotOptimize(checksum);
      bytes += p.length;
      counters.verdicts[p.verdict].Add();
      if (group_count == 0 || groups[group_count - 1].receipt_ns != receipt) {
        groups[group_count++] = {receipt, 0};
      }
      ++groups[group_count - 1].count;
    }
    counters.packets.Add(kBatch);
    counters.bytes.Add(bytes);
    const std::uint64_t now = clock + 200'000 + batch[0].latency_ns;
    for (std::size_t g = 0; g < group_count; ++g) {
      counters.verdict_latency.Observe(now - groups[g].receipt_ns, groups[g].count);
    }
    clock += 1'000'000;
    benchmark::DoNotOptimize(groups);
  }
  benchmark::DoNotOptimize(counters.packets.value());
  SetCounters(state);
}
BENCHMARK(BM_Accounting_ExactPerReceiveGroup);

// For comparison only: prometheus-cpp's Counter (CAS loop) and Histogram
// (mutex) per packet, which is why the hot path does not use them.
void BM_Accounting_PrometheusCpp(benchmark::State& state) {
  const auto batch = MakeBatch();
  prometheus::Registry registry;
  auto& counter_family = prometheus::BuildCounter().Name("bench_total").Register(registry);
  auto& packets = counter_family.Add({{"what", "packets"}});
  auto& bytes = counter_family.Add({{"what", "bytes"}});
  std::array<prometheus::Counter*, 3> verdicts{&counter_family.Add({{"what", "accept"}}),
                                               &counter_family.Add({{"what", "drop"}}),
                                               &counter_family.Add({{"what", "repeat"}})};
  prometheus::Histogram::BucketBoundaries bounds;
  for (int k = 0; k < LatencyHistogram::kBuckets; ++k) bounds.push_back(LatencyHistogram::UpperBoundSeconds(k));
  auto& latency = prometheus::BuildHistogram().Name("bench_seconds").Register(registry).Add({}, bounds);
  std::uint64_t checksum = 0;
  for (auto _ : state) {
    for (const Packet& p : batch) {
      checksum += p.length + p.verdict + p.latency_ns;
      benchmark::DoNotOptimize(checksum);
      packets.Increment();
      bytes.Increment(p.length);
      verdicts[p.verdict]->Increment();
      latency.Observe(static_cast<double>(p.latency_ns) * 1e-9);
    }
  }
  SetCounters(state);
}
BENCHMARK(BM_Accounting_PrometheusCpp);

}  // namespace

BENCHMARK_MAIN();
