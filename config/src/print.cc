// ToToml: the effective configuration as a commented TOML document.
#include <sstream>

#include <toml++/toml.h>

#include "checks.h"
#include "rule_section.h"
#include "verdictd/config/loader.h"
#include "verdictd/config/values.h"

namespace verdictd::config {

namespace {

// A TOML basic string ("..."), escaped.
std::string Quote(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      out += "\\u00";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

const char* Bool(bool value) { return value ? "true" : "false"; }

}  // namespace

std::string ToToml(const Config& config) {
  std::ostringstream out;
  out << "# verdictd effective configuration (every key, defaults included).\n"
      << "# See docs/configuration.md for what each key means.\n\n";

  out << "[verdict]\n"
      << "default = " << Quote(VerdictSettingText(config.verdict.default_verdict)) << '\n'
      << "unparseable = " << Quote(VerdictSettingText(config.verdict.unparseable_verdict))
      << '\n'
      << "batch_size = " << config.verdict.batch_size << '\n'
      << "flush_interval_us = " << config.verdict.flush_interval_us << '\n'
      << "busy_poll_us = " << config.verdict.busy_poll_us << "\n\n";

  out << "[log]\n"
      << "level = " << Quote(LogLevelText(config.log.level)) << "\n\n";

  out << "[metrics]\n"
      << "enabled = " << Bool(config.metrics.enabled) << '\n'
      << "listen = " << Quote(config.metrics.listen) << "\n\n";

  out << "[control]\n"
      << "enabled = " << Bool(config.control.enabled) << '\n'
      << "socket = " << Quote(config.control.socket) << "\n\n";

  out << "[process]\n"
      << "user = " << Quote(config.process.user) << "\n\n";

  for (const QueueRange& q : config.queues) {
    out << "[[queues]]\n"
        << "first = " << q.first << '\n'
        << "count = " << q.count << (q.count == 0 ? "  # one queue per online CPU" : "")
        << '\n'
        << "cpus = [";
    for (std::size_t i = 0; i < q.cpus.size(); ++i) out << (i ? ", " : "") << q.cpus[i];
    out << "]\n"
        << "copy_mode = " << Quote(CopyModeText(q.copy_mode)) << '\n'
        << "copy_range = " << q.copy_range << '\n'
        << "max_length = " << q.max_length << '\n'
        << "fail_open = " << Bool(q.fail_open) << '\n'
        << "gso = " << Bool(q.gso) << '\n'
        << "conntrack = " << Bool(q.conntrack) << '\n'
        << "uid_gid = " << Bool(q.uid_gid) << '\n'
        << "secctx = " << Bool(q.secctx) << '\n'
        << "receive_buffer_bytes = " << q.receive_buffer_bytes << '\n'
        << "receive_batch = " << q.receive_batch << "\n\n";
  }

  const ExtensionsSection& e = config.extensions;
  out << "[extension_host]\n"
      << "directory = " << Quote(e.directory) << '\n'
      << "arena_concurrency = " << e.arena_concurrency << '\n'
      << "pending_slots = " << e.pending_slots << '\n'
      << "pending_timeout_ms = " << e.pending_timeout_ms << '\n'
      << "max_packet_bytes = " << e.max_packet_bytes << '\n'
      << "timeout_verdict = " << Quote(VerdictSettingText(e.timeout_verdict)) << '\n'
      << "overflow_verdict = " << Quote(VerdictSettingText(e.overflow_verdict)) << '\n'
      << "end_verdict = " << Quote(VerdictSettingText(e.end_verdict)) << "\n\n";
  for (const ExtensionEntry& x : e.chain) {
    out << "[[extensions]]\n"
        << "name = " << Quote(x.name) << '\n'
        << "file = " << Quote(x.file) << '\n'
        << "parameters = " << Quote(x.parameters) << '\n'
        << "group = " << x.group << '\n'
        << "started = " << Bool(x.started) << "\n\n";
  }

  toml::table rules;
  PrintRulesSection(config.rules, rules);
  if (!rules.empty()) out << toml::toml_formatter(rules) << '\n';
  return out.str();
}

}  // namespace verdictd::config
