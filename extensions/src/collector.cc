// verdictd_extension_* metrics: each extension's per-worker counters summed
// at scrape time (no lock on the worker side; the scrape locks the host's
// registry, which only the control thread changes).
#include <array>
#include <functional>
#include <limits>

#include <prometheus/metric_family.h>

#include "verdictd/extensions/host.h"

namespace verdictd::extensions {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(const char* name, const char* help, MetricType type) {
  MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

void Add(MetricFamily& family, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
}

class ExtensionCollector final : public prometheus::Collectable {
 public:
  using Snapshot = std::function<std::vector<std::shared_ptr<ExtensionCounters>>()>;
  explicit ExtensionCollector(Snapshot snapshot) : snapshot_(std::move(snapshot)) {}

  std::vector<MetricFamily> Collect() const override {
    const auto C = MetricType::Counter;
    MetricFamily calls = Family("verdictd_extension_calls_total", "process() calls per extension.", C);
    MetricFamily results = Family("verdictd_extension_results_total",
                                  "What process() (or a completion) returned, per extension.", C);
    MetricFamily errors = Family("verdictd_extension_errors_total",
                                 "Results that could not be honoured (bad result, refused rewrite).", C);
    MetricFamily timeouts = Family("verdictd_extension_timeouts_total",
                                   "Pending packets given the timeout verdict.", C);
    MetricFamily overflows = Family("verdictd_extension_overflows_total",
                                    "Packets given the overflow verdict (pending table full).", C);
    MetricFamily late = Family("verdictd_extension_late_completions_total",
                               "Completions that came after the timeout verdict (ignored).", C);
    MetricFamily pending = Family("verdictd_extension_pending_packets",
                                  "Packets waiting for an asynchronous verdict.", MetricType::Gauge);
    MetricFamily custom = Family("verdictd_extension_counter_total",
                                 "Counters an extension declares itself.", C);
    MetricFamily time = Family("verdictd_extension_process_seconds",
                               "process() time, one call in 64 sampled.", MetricType::Histogram);
    for (const auto& counters : snapshot_()) {
      const std::vector<ClientMetric::Label> name{{"extension", counters->name}};
      std::uint64_t c = 0, e = 0, t = 0, o = 0, l = 0, started = 0, finished = 0;
      std::array<std::uint64_t, kResultLabels.size()> r{};
      std::array<std::uint64_t, kMaxExtensionCounters> x{};
      std::array<std::uint64_t, metrics::LatencyHistogram::kBuckets + 1> buckets{};
      std::uint64_t sum_ns = 0;
      for (const ExtensionWorkerCounters& w : counters->workers) {
        c += w.calls.value();
        e += w.errors.value();
        t += w.timeouts.value();
        o += w.overflows.value();
        l += w.late.value();
        started += w.pending_started.value();
        finished += w.pending_finished.value();
        for (std::size_t i = 0; i < r.size(); ++i) r[i] += w.results[i].value();
        for (std::size_t i = 0; i < x.size(); ++i) x[i] += w.custom[i].value();
        for (int k = 0; k <= metrics::LatencyHistogram::kBuckets; ++k) {
          buckets[static_cast<std::size_t>(k)] += w.process_time.bucket(k);
        }
        sum_ns += w.process_time.sum_nanoseconds();
      }
      Add(calls, name, static_cast<double>(c));
      Add(errors, name, static_cast<double>(e));
      Add(timeouts, name, static_cast<double>(t));
      Add(overflows, name, static_cast<double>(o));
      Add(late, name, static_cast<double>(l));
      Add(pending, name, static_cast<double>(started >= finished ? started - finished : 0));
      for (std::size_t i = 0; i < r.size(); ++i) {
        Add(results, {{"extension", counters->name}, {"result", kResultLabels[i]}},
            static_cast<double>(r[i]));
      }
      for (std::size_t i = 0; i < counters->counter_names.size() && i < x.size(); ++i) {
        Add(custom, {{"extension", counters->name}, {"counter", counters->counter_names[i]}},
            static_cast<double>(x[i]));
      }
      ClientMetric h;
      h.label = name;
      std::uint64_t cumulative = 0;
      for (int k = 0; k < metrics::LatencyHistogram::kBuckets; ++k) {
        cumulative += buckets[static_cast<std::size_t>(k)];
        h.histogram.bucket.push_back({cumulative, metrics::LatencyHistogram::UpperBoundSeconds(k)});
      }
      cumulative += buckets[metrics::LatencyHistogram::kBuckets];
      h.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
      h.histogram.sample_count = cumulative;
      h.histogram.sample_sum = static_cast<double>(sum_ns) * 1e-9;
      time.metric.push_back(std::move(h));
    }
    return {calls, results, errors, timeouts, overflows, late, pending, custom, time};
  }

 private:
  Snapshot snapshot_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeExtensionCollector(
    std::function<std::vector<std::shared_ptr<ExtensionCounters>>()> snapshot) {
  return std::make_shared<ExtensionCollector>(std::move(snapshot));
}

}  // namespace verdictd::extensions
