#include "verdictd/metrics/collectors.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include <prometheus/text_serializer.h>

#include "verdictd/metrics/process_stats.h"
#include "verdictd/metrics/queue_counters.h"

#ifndef VERDICTD_VERSION
#define VERDICTD_VERSION "unknown"
#endif

namespace verdictd::metrics {

using queueio::KernelQueueStats;

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

ClientMetric Sample(std::vector<ClientMetric::Label> labels, MetricType type, double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return metric;
}

void AddSample(MetricFamily& family, std::vector<ClientMetric::Label> labels, double value) {
  family.metric.push_back(Sample(std::move(labels), family.type, value));
}

// NFQA_CFG_F_* bits (linux/netfilter/nfnetlink_queue.h) and their label.
constexpr std::pair<std::uint32_t, const char*> kQueueFlagNames[] = {
    {1u << 0, "fail-open"}, {1u << 1, "conntrack"}, {1u << 2, "gso"},
    {1u << 3, "uid-gid"},   {1u << 4, "secctx"}};

// The kernel's enum nfqnl_config_mode.
const char* CopyModeName(std::uint32_t mode) {
  switch (mode) {
    case 0: return "none";
    case 1: return "meta";
    case 2: return "packet";
    default: return "unknown";
  }
}

// One queue's worker counters summed at scrape time.
struct HistogramSnapshot {
  std::array<std::uint64_t, LatencyHistogram::kBuckets + 1> buckets{};
  std::uint64_t sum_ns = 0;

  void Add(const LatencyHistogram& h) {
    for (int k = 0; k <= LatencyHistogram::kBuckets; ++k) buckets[static_cast<std::size_t>(k)] += h.bucket(k);
    sum_ns += h.sum_nanoseconds();
  }

  ClientMetric ToMetric(std::vector<ClientMetric::Label> labels) const {
    ClientMetric metric;
    metric.label = std::move(labels);
    std::uint64_t cumulative = 0;
    for (int k = 0; k < LatencyHistogram::kBuckets; ++k) {
      cumulative += buckets[static_cast<std::size_t>(k)];
      metric.histogram.bucket.push_back({cumulative, LatencyHistogram::UpperBoundSeconds(k)});
    }
    cumulative += buckets[LatencyHistogram::kBuckets];
    metric.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    metric.histogram.sample_count = cumulative;
    metric.histogram.sample_sum = static_cast<double>(sum_ns) * 1e-9;
    return metric;
  }
};

// The values of kQueueCounters, row after row (a per_verdict row holds one
// value per verdict kind), in one flat array.
constexpr std::size_t CountValues() {
  std::size_t n = 0;
  for (const QueueCounter& row : kQueueCounters) n += ValueCount(row);
  return n;
}
constexpr std::size_t kValueCount = CountValues();

struct QueueSnapshot {
  std::array<std::uint64_t, kValueCount> values{};
  HistogramSnapshot verdict_latency, kernel_delay;
  bool up = false;
  std::uint32_t flags = 0, max_length = 0;
  bool bound = false;
  int cpu = -1;
  double cpu_seconds = 0;
  bool cpu_seconds_known = false;

  void Add(const WorkerCounters& c) {
    std::size_t v = 0;
    for (const QueueCounter& row : kQueueCounters) {
      for (std::size_t k = 0; k < ValueCount(row); ++k, ++v) {
        values[v] = Combined(row, values[v], row.read(c, k));
      }
    }
    verdict_latency.Add(c.verdict_latency);
    kernel_delay.Add(c.kernel_delay);
    if (c.posture.bound.load(std::memory_order_relaxed)) {
      bound = true;
      flags = c.posture.flags.load(std::memory_order_relaxed);
      max_length = c.posture.max_length.load(std::memory_order_relaxed);
    }
    const bool worker_up = c.up.load(std::memory_order_relaxed);
    up = up || worker_up;
    if (cpu < 0) cpu = c.cpu.load(std::memory_order_relaxed);
    const int tid = c.tid.load(std::memory_order_relaxed);
    if (worker_up && tid > 0) {
      const ProcStat stat = ReadProcStat("/proc/self/task/" + std::to_string(tid) + "/stat");
      if (stat.ok) {
        cpu_seconds += stat.cpu_seconds;
        cpu_seconds_known = true;
      }
    }
  }
};

}  // namespace

QueueCollector::QueueCollector(std::string kernel_stats_path)
    : kernel_stats_path_(std::move(kernel_stats_path)) {
  if (kernel_stats_path_.empty()) return;
  kernel_stats_fd_ = open(kernel_stats_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (kernel_stats_fd_ < 0) kernel_stats_errno_ = errno;
}

bool QueueCollector::kernel_stats_available() const {
  std::lock_guard lock(mutex_);
  return kernel_stats_fd_ >= 0;
}

int QueueCollector::kernel_stats_errno() const {
  std::lock_guard lock(mutex_);
  return kernel_stats_errno_;
}

QueueCollector::~QueueCollector() {
  if (kernel_stats_fd_ >= 0) close(kernel_stats_fd_);
}

namespace {

// Re-reads the kernel's table from the start through the kept descriptor
// (pread from offset 0: seq_file starts the table again), so that it stays
// readable after privileges are dropped; reopens it only if it was never
// opened (it may have become readable since).
std::optional<std::vector<KernelQueueStats>> ReadKernelTableAt(int& fd, const std::string& path) {
  if (fd < 0) fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = pread(fd, buffer, sizeof buffer, static_cast<off_t>(text.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  return queueio::ParseKernelQueueTable(text);
}

}  // namespace

std::optional<std::vector<KernelQueueStats>> QueueCollector::ReadKernelTable() const {
  std::lock_guard lock(mutex_);
  if (kernel_stats_path_.empty()) return std::nullopt;
  return ReadKernelTableAt(kernel_stats_fd_, kernel_stats_path_);
}

void QueueCollector::AddWorker(std::uint16_t queue, const WorkerCounters& counters) {
  std::lock_guard lock(mutex_);
  workers_[queue].push_back(&counters);
}

void QueueCollector::RemoveWorker(std::uint16_t queue, const WorkerCounters& counters) {
  std::lock_guard lock(mutex_);
  const auto it = workers_.find(queue);
  if (it == workers_.end()) return;
  std::erase(it->second, &counters);
  if (it->second.empty()) workers_.erase(it);
}

void QueueCollector::RemoveWorkers() {
  std::lock_guard lock(mutex_);
  workers_.clear();
}

std::vector<MetricFamily> QueueCollector::Collect() const {
  std::map<std::uint16_t, QueueSnapshot> queues;
  std::optional<std::vector<KernelQueueStats>> table;
  {
    std::lock_guard lock(mutex_);
    if (!kernel_stats_path_.empty()) table = ReadKernelTableAt(kernel_stats_fd_, kernel_stats_path_);
    for (const auto& [queue, list] : workers_) {
      QueueSnapshot& snapshot = queues[queue];
      for (const WorkerCounters* counters : list) snapshot.Add(*counters);
    }
  }
  const auto C = MetricType::Counter;
  const auto G = MetricType::Gauge;
  const auto H = MetricType::Histogram;
  std::vector<MetricFamily> families;

  // The per-queue counter table (queue_counters.h): one family per metric
  // name, rows that share a name told apart by their label.
  std::size_t first_value = 0;
  for (std::size_t r = 0; r < std::size(kQueueCounters); first_value += ValueCount(kQueueCounters[r++])) {
    const QueueCounter& head = kQueueCounters[r];
    if (head.metric == nullptr) continue;
    bool seen = false;  // an earlier row opened this family
    for (std::size_t e = 0; e < r && !seen; ++e) {
      seen = kQueueCounters[e].metric != nullptr &&
             std::string_view(kQueueCounters[e].metric) == head.metric;
    }
    if (seen) continue;
    MetricFamily family = Family(head.metric, head.help != nullptr ? head.help : "",
                                 head.kind == CounterKind::kCounter ? C : G);
    for (const auto& [queue, s] : queues) {
      const std::string q = std::to_string(queue);
      std::size_t v = first_value;
      for (std::size_t e = r; e < std::size(kQueueCounters); v += ValueCount(kQueueCounters[e++])) {
        const QueueCounter& row = kQueueCounters[e];
        if (row.metric == nullptr || std::string_view(row.metric) != head.metric) continue;
        for (std::size_t k = 0; k < ValueCount(row); ++k) {
          std::vector<ClientMetric::Label> labels{{"queue", q}};
          if (row.label_name != nullptr) {
            labels.push_back({row.label_name, row.per_verdict ? kVerdictLabels[k] : row.label_value});
          }
          AddSample(family, std::move(labels), static_cast<double>(s.values[v + k]));
        }
      }
    }
    families.push_back(std::move(family));
  }

  MetricFamily latency = Family("verdictd_verdict_latency_seconds",
                                "Time from receiving a packet to sending its verdict.", H);
  MetricFamily delay = Family("verdictd_kernel_delay_seconds",
                              "Time from the kernel's packet timestamp to its receipt by the "
                              "worker (packets that carry a timestamp).",
                              H);
  MetricFamily up = Family("verdictd_worker_up", "1 while the queue's worker runs its receive loop.", G);
  MetricFamily cpu = Family("verdictd_worker_cpu", "CPU the queue's worker is pinned to (-1: not pinned).", G);
  MetricFamily cpu_seconds =
      Family("verdictd_worker_cpu_seconds_total", "CPU time (user + system) used by the queue's worker thread.", C);
  MetricFamily max_length = Family("verdictd_queue_max_length",
                                   "Maximum queue length the kernel acknowledged at bind, in packets.", G);
  MetricFamily flag = Family("verdictd_queue_flag",
                             "Queue flags the kernel acknowledged at bind (1 on, 0 off): fail-open, "
                             "gso, conntrack, uid-gid, secctx.",
                             G);
  for (const auto& [queue, s] : queues) {
    const std::string q = std::to_string(queue);
    latency.metric.push_back(s.verdict_latency.ToMetric({{"queue", q}}));
    delay.metric.push_back(s.kernel_delay.ToMetric({{"queue", q}}));
    AddSample(up, {{"queue", q}}, s.up ? 1 : 0);
    AddSample(cpu, {{"queue", q}}, s.cpu);
    if (s.cpu_seconds_known) AddSample(cpu_seconds, {{"queue", q}}, s.cpu_seconds);
    if (s.bound) {
      AddSample(max_length, {{"queue", q}}, s.max_length);
      for (const auto& [bit, name] : kQueueFlagNames) {
        AddSample(flag, {{"queue", q}, {"flag", name}}, (s.flags & bit) != 0 ? 1 : 0);
      }
    }
  }
  for (auto* family : {&latency, &delay, &up, &cpu, &cpu_seconds, &max_length, &flag}) {
    families.push_back(std::move(*family));
  }

  // The kernel's side of our queues, read in this thread's network namespace.
  if (!kernel_stats_path_.empty()) {
    MetricFamily bound = Family("verdictd_kernel_queue_bound",
                                "1 when the kernel lists the queue as bound (in "
                                "/proc/net/netfilter/nfnetlink_queue of verdictd's network namespace).",
                                G);
    MetricFamily waiting = Family("verdictd_kernel_queue_waiting_packets",
                                  "Packets the kernel holds in the queue waiting for a verdict.", G);
    MetricFamily dropped = Family("verdictd_kernel_dropped_packets_total",
                                  "Packets the kernel dropped: reason queue_full (queue at its maximum "
                                  "length, fail-open off) or socket_full (netlink receive buffer full). "
                                  "32-bit in the kernel: wraps.",
                                  C);
    MetricFamily last_id = Family("verdictd_kernel_queue_last_packet_id",
                                  "Id of the last packet the kernel queued (a running packet counter).", G);
    MetricFamily available = Family(
        "verdictd_kernel_stats_available",
        "1 when verdictd can read the kernel's queue table (/proc/net/netfilter/nfnetlink_queue, "
        "root-only); 0 when it cannot, and the verdictd_kernel_* families are absent (see the "
        "startup log).",
        G);
    AddSample(available, {}, table ? 1 : 0);
    MetricFamily info = Family("verdictd_queue_info",
                               "Always 1; labels carry the copy mode the kernel applies to the "
                               "queue, read back from its queue table.",
                               G);
    MetricFamily copy_range = Family("verdictd_queue_copy_range_bytes",
                                     "Bytes of each packet the kernel copies to verdictd, read back "
                                     "from its queue table.",
                                     G);
    if (table) {
      for (const auto& [queue, s] : queues) {
        (void)s;
        const std::string q = std::to_string(queue);
        const KernelQueueStats* row = nullptr;
        for (const auto& candidate : *table) {
          if (candidate.queue_num == queue) row = &candidate;
        }
        AddSample(bound, {{"queue", q}}, row != nullptr ? 1 : 0);
        if (row == nullptr) continue;
        AddSample(waiting, {{"queue", q}}, row->queue_total);
        AddSample(dropped, {{"queue", q}, {"reason", "queue_full"}}, row->queue_dropped);
        AddSample(dropped, {{"queue", q}, {"reason", "socket_full"}}, row->user_dropped);
        AddSample(last_id, {{"queue", q}}, row->id_sequence);
        AddSample(info, {{"queue", q}, {"copy_mode", CopyModeName(row->copy_mode)}}, 1);
        AddSample(copy_range, {{"queue", q}}, row->copy_range);
      }
    }
    for (auto* family : {&bound, &waiting, &dropped, &last_id, &available, &info, &copy_range}) {
      families.push_back(std::move(*family));
    }
  }

  // A family without samples says nothing; leave it out of the exposition.
  std::erase_if(families, [](const MetricFamily& f) { return f.metric.empty(); });
  return families;
}

ServiceCollector::ServiceCollector(const ServiceCounters* counters, std::string version)
    : counters_(counters), version_(version.empty() ? BuildVersion() : std::move(version)) {}

std::vector<MetricFamily> ServiceCollector::Collect() const {
  std::vector<MetricFamily> families;
  if (counters_ != nullptr) {
    struct Field {
      const char* name;
      const char* help;
      const RelaxedCounter ServiceCounters::*member;
    };
    static constexpr Field kFields[] = {
        {"verdictd_reloads_total", "Configurations applied live.", &ServiceCounters::reloads},
        {"verdictd_reload_failures_total",
         "Reloads refused (invalid file, or a change that needs a restart).",
         &ServiceCounters::reload_failures},
        {"verdictd_control_requests_total", "Commands served on the control socket.",
         &ServiceCounters::control_requests},
        {"verdictd_control_errors_total", "Malformed or failed control commands.",
         &ServiceCounters::control_errors},
    };
    for (const Field& field : kFields) {
      MetricFamily family = Family(field.name, field.help, MetricType::Counter);
      AddSample(family, {}, static_cast<double>((counters_->*field.member).value()));
      families.push_back(std::move(family));
    }
  }
  if (counters_ != nullptr) {
    const int conntrack = counters_->conntrack_netlink.load(std::memory_order_relaxed);
    if (conntrack >= 0) {
      MetricFamily family =
          Family("verdictd_conntrack_netlink_available",
                 "1 when the kernel has nf_conntrack_netlink (connmark verdicts take effect), "
                 "0 when it lacks it (probed when the queues were bound).",
                 MetricType::Gauge);
      AddSample(family, {}, conntrack);
      families.push_back(std::move(family));
    }
    MetricFamily fallback = Family(
        "verdictd_connmark_bypass_fallback_rules",
        "Rules with bypass_via = \"connmark\" that bypass through the packet mark instead, "
        "because the kernel lacks nf_conntrack_netlink.",
        MetricType::Gauge);
    AddSample(fallback, {},
              counters_->connmark_bypass_fallback_rules.load(std::memory_order_relaxed));
    families.push_back(std::move(fallback));
  }
  MetricFamily info = Family("verdictd_build_info", "Always 1; labels carry the build's version and compiler.",
                             MetricType::Gauge);
  AddSample(info, {{"compiler", __VERSION__}, {"version", version_}}, 1);
  families.push_back(std::move(info));
  return families;
}

std::vector<MetricFamily> ProcessCollector::Collect() const {
  std::vector<MetricFamily> families;
  const ProcStat stat = ReadProcStat();
  auto add = [&](const char* name, const char* help, MetricType type, double value) {
    MetricFamily family = Family(name, help, type);
    AddSample(family, {}, value);
    families.push_back(std::move(family));
  };
  if (stat.ok) {
    add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", MetricType::Counter,
        stat.cpu_seconds);
    add("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
        static_cast<double>(stat.resident_bytes));
    add("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
        static_cast<double>(stat.virtual_bytes));
    add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        MetricType::Gauge, stat.start_time_seconds);
  }
  if (const long fds = OpenFileDescriptors(); fds >= 0) {
    add("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, static_cast<double>(fds));
  }
  if (const long max = MaxFileDescriptors(); max >= 0) {
    add("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
        static_cast<double>(max));
  }
  return families;
}

std::string SerializeText(const prometheus::Collectable& collectable) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, collectable.Collect());
  return out.str();
}

const char* BuildVersion() noexcept { return VERDICTD_VERSION; }

}  // namespace verdictd::metrics
