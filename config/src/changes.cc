#include "verdictd/config/changes.h"

#include <algorithm>

#include "key_table.h"

namespace verdictd::config {

namespace {

// Calls add(key, live) for every key that differs; which keys are live is
// each key table's `reload` (key_tables.cc).
template <typename Add>
void Compare(const Config& a, const Config& b, QueueChanges queue_changes, Add add) {
  const bool live_queues = queue_changes == QueueChanges::kLive;
  if (a.queues.size() != b.queues.size()) add("queues", live_queues);
  const std::size_t common = std::min(a.queues.size(), b.queues.size());
  for (std::size_t i = 0; i < common; ++i) {
    CompareKeys(QueueKeys(), a.queues[i], b.queues[i], "queues[" + std::to_string(i) + "].",
                live_queues, add);
  }
  CompareKeys(VerdictKeys(), a.verdict, b.verdict, "verdict.", live_queues, add);
  CompareKeys(MetricsKeys(), a.metrics, b.metrics, "metrics.", live_queues, add);
  CompareKeys(ControlKeys(), a.control, b.control, "control.", live_queues, add);
  CompareKeys(LogKeys(), a.log, b.log, "log.", live_queues, add);
  CompareKeys(ProcessKeys(), a.process, b.process, "process.", live_queues, add);
  if (!(a.rules == b.rules)) add("rules", true);
  CompareKeys(ExtensionHostKeys(), a.extensions, b.extensions, "extension_host.", live_queues,
              add);
  // A new chain is built for the next policy; extensions kept by name, file
  // and parameters stay loaded, the others load or unload.
  if (a.extensions.chain != b.extensions.chain) add("extensions", true);
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

std::string QueueSettingChanges(const QueueRange& running, const QueueRange& next) {
  std::string changes;
  for (const Key<QueueRange>& key : QueueKeys()) {
    if (key.reload != Reload::kQueueSetting || key.same(running, next)) continue;
    if (!changes.empty()) changes += ", ";
    changes += std::string(key.name) + " " + key.log_text(running) + " -> " + key.log_text(next);
  }
  return changes;
}

}  // namespace verdictd::config
