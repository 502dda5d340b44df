#include "verdictd/service/queue_status.h"

#include <linux/netfilter/nfnetlink_queue.h>

#include <charconv>
#include <cstdio>
#include <map>

#include "verdictd/metrics/queue_counters.h"

namespace verdictd::service {
namespace {

const queueio::KernelQueueStats* FindRow(const KernelTable& kernel, std::uint16_t queue) {
  if (!kernel) return nullptr;
  for (const auto& row : *kernel) {
    if (row.queue_num == queue) return &row;
  }
  return nullptr;
}

std::string FlagList(std::uint32_t flags) {
  std::string text;
  auto add = [&](std::uint32_t bit, const char* name) {
    if ((flags & bit) == 0) return;
    if (!text.empty()) text += ',';
    text += name;
  };
  add(NFQA_CFG_F_FAIL_OPEN, "fail-open");
  add(NFQA_CFG_F_GSO, "gso");
  add(NFQA_CFG_F_CONNTRACK, "conntrack");
  add(NFQA_CFG_F_UID_GID, "uid-gid");
  add(NFQA_CFG_F_SECCTX, "secctx");
  return text.empty() ? "none" : text;
}

const char* KernelCopyMode(std::uint32_t mode) {
  switch (mode) {
    case NFQNL_COPY_NONE: return "none";
    case NFQNL_COPY_META: return "meta";
    case NFQNL_COPY_PACKET: return "packet";
    default: return "unknown";
  }
}

// " key=value" for every row of the counter table of `kind` that ctl status shows.
void AppendStatusValues(std::string& line, const metrics::WorkerCounters& c,
                        metrics::CounterKind kind) {
  for (const metrics::QueueCounter& row : metrics::kQueueCounters) {
    if (row.status_key == nullptr || row.kind != kind) continue;
    for (std::size_t k = 0; k < metrics::ValueCount(row); ++k) {
      line += ' ';
      line += metrics::RowKey(row, row.status_key, k);
      line += '=' + std::to_string(row.read(c, k));
    }
  }
}

std::uint64_t Verdicts(const metrics::WorkerCounters& c) {
  std::uint64_t total = 0;
  for (const auto& v : c.verdicts) total += v.value();
  return total;
}

bool ParseU64(std::string_view text, std::uint64_t& value) {
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool ParseI64(std::string_view text, std::int64_t& value) {
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::string Rate(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f", value);
  return text;
}

std::string Latency(std::optional<double> seconds) {
  if (!seconds) return "-";
  char text[32];
  if (*seconds > 1.0) return ">1s";
  if (*seconds == 1.0) return "<=1s";
  if (*seconds >= 1e-3) {
    std::snprintf(text, sizeof text, "<=%.3gms", *seconds * 1e3);
  } else {
    std::snprintf(text, sizeof text, "<=%.0fus", *seconds * 1e6);
  }
  return text;
}

}  // namespace

std::string QueueStatusLines(std::span<const QueueCountersRef> queues, const KernelTable& kernel) {
  std::string text;
  for (const QueueCountersRef& ref : queues) {
    const metrics::WorkerCounters& c = *ref.counters;
    const queueio::KernelQueueStats* row = FindRow(kernel, ref.queue);
    std::string line = "queue " + std::to_string(ref.queue);
    const int cpu = ref.plan != nullptr ? ref.plan->cpu : c.cpu.load(std::memory_order_relaxed);
    line += " cpu=" + (cpu < 0 ? std::string("any") : std::to_string(cpu));
    line += " flags=" + FlagList(c.posture.flags.load(std::memory_order_relaxed));
    if (row != nullptr) {
      line += std::string(" copy=") + KernelCopyMode(row->copy_mode) + "/" +
              std::to_string(row->copy_range);
    } else if (ref.plan != nullptr) {
      line += std::string(" copy=asked:") +
              (ref.plan->queue.copy_mode == queueio::CopyMode::kMeta ? "meta" : "packet") + "/" +
              std::to_string(ref.plan->queue.copy_range);
    }
    line += " maxlen=" + std::to_string(c.posture.max_length.load(std::memory_order_relaxed));
    // The table's counters, the kernel's drops and backlog, the table's gauges.
    AppendStatusValues(line, c, metrics::CounterKind::kCounter);
    line += " drops=" + (row != nullptr ? std::to_string(row->queue_dropped) + "/" +
                                              std::to_string(row->user_dropped)
                                        : std::string("-"));
    line += " backlog=" + (row != nullptr ? std::to_string(row->queue_total) : std::string("-"));
    AppendStatusValues(line, c, metrics::CounterKind::kGauge);
    text += line + "\n";
  }
  return text;
}

std::string QueueSampleLines(std::span<const QueueCountersRef> queues, const KernelTable& kernel) {
  std::string text;
  for (const QueueCountersRef& ref : queues) {
    const metrics::WorkerCounters& c = *ref.counters;
    const queueio::KernelQueueStats* row = FindRow(kernel, ref.queue);
    text += "sample queue=" + std::to_string(ref.queue) +
            " packets=" + std::to_string(c.packets.value()) +
            " verdicts=" + std::to_string(Verdicts(c)) + " drops=" +
            (row != nullptr ? std::to_string(std::uint64_t{row->queue_dropped} + row->user_dropped)
                            : std::string("-1")) +
            " pending=" + std::to_string(c.pending.load(std::memory_order_relaxed)) +
            " backlog=" + (row != nullptr ? std::to_string(row->queue_total) : std::string("-1")) +
            " lat=";
    for (int k = 0; k <= metrics::LatencyHistogram::kBuckets; ++k) {
      if (k > 0) text += ',';
      text += std::to_string(c.verdict_latency.bucket(k));
    }
    text += "\n";
  }
  return text;
}

std::vector<QueueSample> ParseQueueSamples(std::string_view reply) {
  std::vector<QueueSample> samples;
  while (!reply.empty()) {
    const auto newline = reply.find('\n');
    std::string_view line = reply.substr(0, newline);
    reply.remove_prefix(newline == std::string_view::npos ? reply.size() : newline + 1);
    if (!line.starts_with("sample ")) continue;
    line.remove_prefix(7);
    QueueSample sample;
    bool ok = true;
    bool has_queue = false;
    while (!line.empty() && ok) {
      const auto space = line.find(' ');
      const std::string_view item = line.substr(0, space);
      line.remove_prefix(space == std::string_view::npos ? line.size() : space + 1);
      const auto equals = item.find('=');
      if (equals == std::string_view::npos) continue;
      const std::string_view key = item.substr(0, equals);
      const std::string_view value = item.substr(equals + 1);
      std::uint64_t number = 0;
      if (key == "queue") {
        ok = ParseU64(value, number) && number <= 65535;
        sample.queue = static_cast<std::uint16_t>(number);
        has_queue = ok;
      } else if (key == "packets") {
        ok = ParseU64(value, sample.packets);
      } else if (key == "verdicts") {
        ok = ParseU64(value, sample.verdicts);
      } else if (key == "pending") {
        ok = ParseU64(value, sample.pending);
      } else if (key == "drops") {
        ok = ParseI64(value, sample.drops);
      } else if (key == "backlog") {
        ok = ParseI64(value, sample.backlog);
      } else if (key == "lat") {
        std::string_view rest = value;
        while (ok && !rest.empty()) {
          const auto comma = rest.find(',');
          ok = ParseU64(rest.substr(0, comma), number);
          sample.latency.push_back(number);
          rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
        }
      }
    }
    if (ok && has_queue) samples.push_back(std::move(sample));
  }
  return samples;
}

std::optional<double> LatencyQuantile(std::span<const std::uint64_t> before,
                                      std::span<const std::uint64_t> now, double q) {
  std::vector<std::uint64_t> delta(now.size());
  std::uint64_t total = 0;
  for (std::size_t k = 0; k < now.size(); ++k) {
    const std::uint64_t old = k < before.size() ? before[k] : 0;
    delta[k] = now[k] >= old ? now[k] - old : 0;
    total += delta[k];
  }
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  std::uint64_t cumulative = 0;
  for (std::size_t k = 0; k < delta.size(); ++k) {
    cumulative += delta[k];
    if (static_cast<double>(cumulative) >= rank && delta[k] > 0) {
      return k < static_cast<std::size_t>(metrics::LatencyHistogram::kBuckets)
                 ? metrics::LatencyHistogram::UpperBoundSeconds(static_cast<int>(k))
                 : 2.0;  // the +Inf bucket: longer than a second
    }
  }
  return std::nullopt;
}

std::string RenderTop(std::span<const QueueSample> before, std::span<const QueueSample> now,
                      double seconds) {
  std::map<std::uint16_t, const QueueSample*> previous;
  for (const QueueSample& s : before) previous[s.queue] = &s;
  char line[256];
  std::snprintf(line, sizeof line, "%6s %10s %10s %10s %8s %8s %8s %9s %9s\n", "QUEUE", "PKT/S",
                "VERDICT/S", "DROPS", "DROP/S", "PENDING", "BACKLOG", "LAT_P50", "LAT_P99");
  std::string text = line;
  for (const QueueSample& s : now) {
    const auto it = previous.find(s.queue);
    const QueueSample* p = it != previous.end() ? it->second : nullptr;
    const bool rates = p != nullptr && seconds > 0;
    auto per_second = [&](std::uint64_t a, std::uint64_t b) {
      return rates ? Rate(static_cast<double>(b >= a ? b - a : 0) / seconds) : std::string("-");
    };
    const std::string pps = per_second(p ? p->packets : 0, s.packets);
    const std::string vps = per_second(p ? p->verdicts : 0, s.verdicts);
    const std::string drops = s.drops < 0 ? "-" : std::to_string(s.drops);
    const std::string dps = s.drops < 0 || (p != nullptr && p->drops < 0)
                                ? "-"
                                : per_second(p ? static_cast<std::uint64_t>(p->drops) : 0,
                                             static_cast<std::uint64_t>(s.drops));
    const std::span<const std::uint64_t> base =
        p != nullptr ? std::span<const std::uint64_t>(p->latency) : std::span<const std::uint64_t>();
    const std::string p50 = Latency(LatencyQuantile(base, s.latency, 0.50));
    const std::string p99 = Latency(LatencyQuantile(base, s.latency, 0.99));
    const std::string backlog = s.backlog < 0 ? "-" : std::to_string(s.backlog);
    std::snprintf(line, sizeof line, "%6u %10s %10s %10s %8s %8llu %8s %9s %9s\n",
                  static_cast<unsigned>(s.queue), pps.c_str(), vps.c_str(), drops.c_str(),
                  dps.c_str(), static_cast<unsigned long long>(s.pending), backlog.c_str(),
                  p50.c_str(), p99.c_str());
    text += line;
  }
  return text;
}

}  // namespace verdictd::service
