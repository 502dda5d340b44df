#include "verdictd/config/changes.h"

#include "verdictd/config/values.h"

namespace verdictd::config {

namespace {

// Calls add(key, live) for every key that differs.
template <typename Add>
void Compare(const Config& a, const Config& b, Add add) {
  if (a.queues.size() != b.queues.size()) add("queues", false);
  const std::size_t common = std::min(a.queues.size(), b.queues.size());
  for (std::size_t i = 0; i < common; ++i) {
    const QueueRange& x = a.queues[i];
    const QueueRange& y = b.queues[i];
    const std::string p = "queues[" + std::to_string(i) + "].";
    if (x.first != y.first) add(p + "first", false);
    if (x.count != y.count) add(p + "count", false);
    if (x.cpus != y.cpus) add(p + "cpus", false);
    if (x.copy_mode != y.copy_mode) add(p + "copy_mode", false);
    if (x.copy_range != y.copy_range) add(p + "copy_range", false);
    if (x.max_length != y.max_length) add(p + "max_length", false);
    if (x.fail_open != y.fail_open) add(p + "fail_open", false);
    if (x.gso != y.gso) add(p + "gso", false);
    if (x.conntrack != y.conntrack) add(p + "conntrack", false);
    if (x.uid_gid != y.uid_gid) add(p + "uid_gid", false);
    if (x.receive_buffer_bytes != y.receive_buffer_bytes) add(p + "receive_buffer_bytes", false);
    if (x.receive_batch != y.receive_batch) add(p + "receive_batch", false);
  }
  if (a.verdict.default_verdict != b.verdict.default_verdict) add("verdict.default", true);
  if (a.verdict.unparseable_verdict != b.verdict.unparseable_verdict) {
    add("verdict.unparseable", true);
  }
  // The workers size their verdict batcher and take their flush and spin
  // times once, at startup (service/worker.h), so these need a restart.
  if (a.verdict.batch_size != b.verdict.batch_size) add("verdict.batch_size", false);
  if (a.verdict.flush_interval_us != b.verdict.flush_interval_us) {
    add("verdict.flush_interval_us", false);
  }
  if (a.verdict.busy_poll_us != b.verdict.busy_poll_us) add("verdict.busy_poll_us", false);
  if (a.metrics.enabled != b.metrics.enabled) add("metrics.enabled", false);
  if (a.metrics.listen != b.metrics.listen) add("metrics.listen", false);
  if (a.control.enabled != b.control.enabled) add("control.enabled", false);
  if (a.control.socket != b.control.socket) add("control.socket", false);
  if (a.log.level != b.log.level) add("log.level", true);
  if (a.process.user != b.process.user) add("process.user", false);
  if (!(a.rules == b.rules)) add("rules", true);
}

}  // namespace

std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next) {
  std::vector<std::string> keys;
  Compare(running, next, [&](std::string key, bool live) {
    if (!live) keys.push_back(std::move(key));
  });
  return keys;
}

std::vector<std::string> ChangedKeys(const Config& running, const Config& next) {
  std::vector<std::string> keys;
  Compare(running, next, [&](std::string key, bool) { keys.push_back(std::move(key)); });
  return keys;
}

}  // namespace verdictd::config
