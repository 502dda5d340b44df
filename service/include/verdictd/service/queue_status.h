// Per-queue views of the running daemon for the control socket:
// `verdictd ctl status` (one human-readable line per queue) and
// `verdictd ctl top` (a live per-queue table refreshed in place).
//
// The daemon side formats samples of its counters (QueueStatusLines,
// QueueSampleLines); the client side parses two samples and renders rates
// and latency percentiles (ParseQueueSamples, RenderTop). Control plane
// only: allocates, never throws except std::bad_alloc.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "verdictd/metrics/latency_histogram.h"
#include "verdictd/queueio/kernel_queue_stats.h"
#include "verdictd/service/service.h"

namespace verdictd::service {

using KernelTable = std::optional<std::vector<queueio::KernelQueueStats>>;

// "queue 0 cpu=0 flags=fail-open,gso copy=packet/65535 maxlen=4096
// received=10 accept=10 drop=0 repeat=0 queue=0 stop=0 drops=0/0 backlog=0
// pending=0 stalled=0", one line per queue. copy comes from the kernel's
// table when `kernel` has it (what the kernel applies), else what was asked
// (marked "asked:"); drops (queue_full/socket_full) and backlog (packets
// the kernel holds) are "-" without the table.
std::string QueueStatusLines(std::span<const QueueCountersRef> queues, const KernelTable& kernel);

// The `top` command's reply: one line per queue,
// "sample queue=0 packets=N verdicts=N drops=N pending=N backlog=N lat=b0,b1,...,bInf"
// (lat: the verdict latency histogram's non-cumulative buckets). drops and
// backlog are -1 without the kernel table.
std::string QueueSampleLines(std::span<const QueueCountersRef> queues, const KernelTable& kernel);

struct QueueSample {
  std::uint16_t queue = 0;
  std::uint64_t packets = 0;
  std::uint64_t verdicts = 0;
  std::int64_t drops = -1;    // kernel drops (queue full + socket full), -1 unknown
  std::uint64_t pending = 0;  // verdicts held by the worker
  std::int64_t backlog = -1;  // packets the kernel holds, -1 unknown
  std::vector<std::uint64_t> latency;  // LatencyHistogram::kBuckets + 1 buckets
};

// The samples of a `top` reply (lines that do not parse are skipped).
std::vector<QueueSample> ParseQueueSamples(std::string_view reply);

// The upper bound (seconds) of the bucket holding quantile `q` of the
// difference `now - before` of two histograms; nullopt when it holds no sample.
std::optional<double> LatencyQuantile(std::span<const std::uint64_t> before,
                                      std::span<const std::uint64_t> now, double q);

// The table of `verdictd ctl top`: one row per queue with packets/s,
// verdicts/s, kernel drops (total and per second), pending verdicts, kernel
// backlog and verdict latency p50/p99 over the interval. `before` empty:
// rates over the whole run are not known, so they show as "-".
std::string RenderTop(std::span<const QueueSample> before, std::span<const QueueSample> now,
                      double seconds);

}  // namespace verdictd::service
