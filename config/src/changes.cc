#include "verdictd/config/changes.h"

#include <algorithm>

#include "verdictd/config/limits.h"
#include "verdictd/config/values.h"

namespace verdictd::config {

namespace {

// Calls add(key, live) for every key that differs.
template <typename Add>
void Compare(const Config& a, const Config& b, QueueChanges queue_changes, Add add) {
  const bool live_queues = queue_changes == QueueChanges::kLive;
  if (a.queues.size() != b.queues.size()) add("queues", live_queues);
  const std::size_t common = std::min(a.queues.size(), b.queues.size());
  for (std::size_t i = 0; i < common; ++i) {
    const QueueRange& x = a.queues[i];
    const QueueRange& y = b.queues[i];
    const std::string p = "queues[" + std::to_string(i) + "].";
    if (x.first != y.first) add(p + "first", live_queues);
    if (x.count != y.count) add(p + "count", live_queues);
    if (x.cpus != y.cpus) add(p + "cpus", live_queues);
    if (x.copy_mode != y.copy_mode) add(p + "copy_mode", live_queues);
    if (x.copy_range != y.copy_range) add(p + "copy_range", live_queues);
    if (x.max_length != y.max_length) add(p + "max_length", live_queues);
    if (x.fail_open != y.fail_open) add(p + "fail_open", live_queues);
    if (x.gso != y.gso) add(p + "gso", live_queues);
    if (x.conntrack != y.conntrack) add(p + "conntrack", live_queues);
    if (x.uid_gid != y.uid_gid) add(p + "uid_gid", live_queues);
    if (x.secctx != y.secctx) add(p + "secctx", live_queues);
    if (x.receive_buffer_bytes != y.receive_buffer_bytes) add(p + "receive_buffer_bytes", live_queues);
    if (x.receive_batch != y.receive_batch) add(p + "receive_batch", live_queues);
  }
  if (a.verdict.default_verdict != b.verdict.default_verdict) add("verdict.default", true);
  if (a.verdict.unparseable_verdict != b.verdict.unparseable_verdict) {
    add("verdict.unparseable", true);
  }
  // Workers take new batching settings with the next policy; their verdict
  // tables were sized at start for max(batch size then, the live capacity),
  // so only a batch size beyond that needs a restart. `a` is the running
  // configuration: its batch size may be lower than the one at start, which
  // only makes this check stricter than needed, never looser.
  if (a.verdict.batch_size != b.verdict.batch_size) {
    add("verdict.batch_size", b.verdict.batch_size <= limits::LiveBatchCapacity(a.verdict.batch_size));
  }
  if (a.verdict.flush_interval_us != b.verdict.flush_interval_us) {
    add("verdict.flush_interval_us", true);
  }
  if (a.verdict.busy_poll_us != b.verdict.busy_poll_us) add("verdict.busy_poll_us", true);
  if (a.metrics.enabled != b.metrics.enabled) add("metrics.enabled", false);
  if (a.metrics.listen != b.metrics.listen) add("metrics.listen", false);
  if (a.control.enabled != b.control.enabled) add("control.enabled", false);
  if (a.control.socket != b.control.socket) add("control.socket", false);
  if (a.log.level != b.log.level) add("log.level", true);
  if (a.process.user != b.process.user) add("process.user", false);
  if (!(a.rules == b.rules)) add("rules", true);
  // A new chain is built for the next policy; extensions kept by name, file
  // and parameters stay loaded, the others load or unload.
  // The pending tables and the arena are sized once, at start.
  const ExtensionsSection& x = a.extensions;
  const ExtensionsSection& y = b.extensions;
  if (x.arena_concurrency != y.arena_concurrency) add("extension_host.arena_concurrency", false);
  if (x.pending_slots != y.pending_slots) add("extension_host.pending_slots", false);
  if (x.max_packet_bytes != y.max_packet_bytes) add("extension_host.max_packet_bytes", false);
  if (x.directory != y.directory) add("extension_host.directory", true);
  if (x.pending_timeout_ms != y.pending_timeout_ms) add("extension_host.pending_timeout_ms", true);
  if (x.timeout_verdict != y.timeout_verdict) add("extension_host.timeout_verdict", true);
  if (x.overflow_verdict != y.overflow_verdict) add("extension_host.overflow_verdict", true);
  if (x.end_verdict != y.end_verdict) add("extension_host.end_verdict", true);
  if (x.chain != y.chain) add("extensions", true);
}

}  // namespace

std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next,
                                            QueueChanges queues) {
  std::vector<std::string> keys;
  Compare(running, next, queues, [&](std::string key, bool live) {
    if (!live) keys.push_back(std::move(key));
  });
  return keys;
}

std::vector<std::string> ChangedKeys(const Config& running, const Config& next) {
  std::vector<std::string> keys;
  Compare(running, next, QueueChanges::kLive,
          [&](std::string key, bool) { keys.push_back(std::move(key)); });
  return keys;
}

}  // namespace verdictd::config
