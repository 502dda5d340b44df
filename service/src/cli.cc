#include "verdictd/service/cli.h"

#include <charconv>
#include <limits>
#include <stdexcept>

#include "verdictd/base/verdict_kind.h"
#include "verdictd/config/values.h"
#include "verdictd/service/logging.h"

namespace verdictd::service {
namespace {

template <typename T>
T ParseNumber(std::string_view text, std::string_view what) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    throw std::invalid_argument(std::string(what) + ": '" + std::string(text) +
                                "' is not a number in range");
  }
  return value;
}

// Registers `--name VALUE`, converting with `parse` (which throws
// std::invalid_argument) into the optional `out`.
template <typename T, typename Parse>
CLI::Option* AddParsed(CLI::App& app, const std::string& name, std::optional<T>& out, Parse parse,
                       const std::string& help) {
  return app.add_option_function<std::string>(
      name,
      [&out, parse, name](const std::string& text) {
        try {
          out = parse(text);
        } catch (const std::invalid_argument& e) {
          throw CLI::ValidationError(name, e.what());
        }
      },
      help);
}

CLI::Option* AddSwitch(CLI::App& app, const std::string& name, std::optional<bool>& out,
                       const std::string& help) {
  return app.add_flag_function(
      "--" + name + ",!--no-" + name, [&out](std::int64_t count) { out = count > 0; }, help);
}

}  // namespace

config::VerdictSetting ParseVerdict(std::string_view text) {
  if (std::optional<config::VerdictSetting> setting = config::ParseVerdictSetting(text)) {
    return *setting;
  }
  // A kind with a target queue and a bad number: say that the number is wrong.
  const std::size_t colon = text.find(':');
  const std::optional<base::VerdictKind> kind = base::ParseVerdictKind(text.substr(0, colon));
  if (kind && base::VerdictKindInfoOf(*kind).has_target_queue && colon != std::string_view::npos) {
    ParseNumber<std::uint16_t>(text.substr(colon + 1), "queue number");
  }
  throw std::invalid_argument("unknown verdict '" + std::string(text) + "'; use " +
                              config::VerdictSettingChoices(false));
}

std::pair<std::uint16_t, std::uint16_t> ParseQueueRange(std::string_view text) {
  const auto colon = text.find(':');
  const auto first = ParseNumber<std::uint16_t>(text.substr(0, colon), "first queue");
  if (colon == std::string_view::npos) return {first, 1};
  const auto last = ParseNumber<std::uint16_t>(text.substr(colon + 1), "last queue");
  if (last < first) {
    throw std::invalid_argument("queue range '" + std::string(text) +
                                "' ends before it starts; write FIRST:LAST with FIRST <= LAST");
  }
  return {first, static_cast<std::uint16_t>(last - first + 1)};
}

std::vector<int> ParseCpuList(std::string_view text) {
  std::vector<int> cpus;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    const auto dash = item.find('-');
    const int low = ParseNumber<int>(item.substr(0, dash), "CPU");
    const int high = dash == std::string_view::npos ? low : ParseNumber<int>(item.substr(dash + 1), "CPU");
    if (high < low || high >= 4096) {
      throw std::invalid_argument("CPU range '" + std::string(item) + "' is not LOW-HIGH with LOW <= HIGH < 4096");
    }
    for (int cpu = low; cpu <= high; ++cpu) cpus.push_back(cpu);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (cpus.empty()) throw std::invalid_argument("empty CPU list; write e.g. 0,1 or 0-3");
  return cpus;
}

std::size_t ParseByteSize(std::string_view text) {
  std::size_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k': case 'K': multiplier = std::size_t{1} << 10; break;
      case 'm': case 'M': multiplier = std::size_t{1} << 20; break;
      case 'g': case 'G': multiplier = std::size_t{1} << 30; break;
      default: break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  const auto value = ParseNumber<std::size_t>(text, "size");
  if (value > std::numeric_limits<std::size_t>::max() / multiplier) {
    throw std::invalid_argument("size '" + std::string(text) + "' is too large");
  }
  return value * multiplier;
}

void AddRunFlags(CLI::App& app, RunOptions& o) {
  auto* queues = AddParsed(app, "--queues", o.queue_first,
                           [&o](const std::string& t) {
                             const auto [first, count] = ParseQueueRange(t);
                             o.queue_count = count;
                             return first;
                           },
                           "queue range FIRST:LAST served one worker per queue (default: 0 and one "
                           "queue per CPU); match iptables --queue-balance FIRST:LAST");
  auto* first = AddParsed(app, "--queue-first", o.queue_first,
                          [](const std::string& t) { return ParseNumber<std::uint16_t>(t, "--queue-first"); },
                          "first queue number (default 0)");
  auto* count = AddParsed(app, "--queue-count", o.queue_count,
                          [](const std::string& t) { return ParseNumber<std::uint16_t>(t, "--queue-count"); },
                          "number of queues (default: one per CPU)");
  queues->excludes(first)->excludes(count);
  AddParsed(app, "--cpus", o.cpus, [](const std::string& t) { return ParseCpuList(t); },
            "CPUs the workers are pinned to, one per queue in order (e.g. 0-3); default: the CPUs "
            "this process may use");
  AddSwitch(app, "fail-open", o.fail_open, "accept packets when the queue is full (default on)");
  AddSwitch(app, "gso", o.gso, "take GSO super-packets unsegmented (default on)");
  AddSwitch(app, "conntrack", o.conntrack, "attach conntrack state to packets (default off)");
  AddSwitch(app, "uid-gid", o.uid_gid, "attach the owning socket's uid/gid (default off)");
  AddSwitch(app, "secctx", o.secctx, "attach the packet's security context (default off)");
  AddParsed(app, "--copy-mode", o.copy_mode,
            [](const std::string& t) {
              if (t == "packet") return config::CopyMode::kPacket;
              if (t == "meta") return config::CopyMode::kMeta;
              throw std::invalid_argument("copy mode '" + t + "': use packet or meta");
            },
            "packet (headers and payload) or meta (metadata only)");
  AddParsed(app, "--copy-range", o.copy_range,
            [](const std::string& t) {
              const auto v = ParseNumber<std::uint32_t>(t, "--copy-range");
              if (v > 65535) throw std::invalid_argument("--copy-range: at most 65535 bytes");
              return v;
            },
            "bytes of each packet copied to userspace (default 65535)");
  AddParsed(app, "--queue-maxlen", o.queue_maxlen,
            [](const std::string& t) {
              const auto v = ParseNumber<std::uint32_t>(t, "--queue-maxlen");
              if (v == 0) throw std::invalid_argument("--queue-maxlen: must be at least 1");
              return v;
            },
            "packets the kernel holds per queue before dropping or failing open (default 4096)");
  AddParsed(app, "--rcvbuf", o.rcvbuf, [](const std::string& t) { return ParseByteSize(t); },
            "netlink receive buffer per queue, e.g. 8M (default 8M)");
  AddParsed(app, "--batch-size", o.batch_size,
            [](const std::string& t) {
              const auto v = ParseNumber<std::size_t>(t, "--batch-size");
              if (v == 0 || v > 65536) throw std::invalid_argument("--batch-size: 1..65536");
              return v;
            },
            "verdicts held before a flush (default 256)");
  AddParsed(app, "--flush-us", o.flush_us,
            [](const std::string& t) { return ParseNumber<std::uint32_t>(t, "--flush-us"); },
            "longest a verdict waits before it is sent, microseconds (default 1000)");
  AddParsed(app, "--busy-poll-us", o.busy_poll_us,
            [](const std::string& t) { return ParseNumber<std::uint32_t>(t, "--busy-poll-us"); },
            "low-latency mode: spin this long on an idle queue before sleeping (default 0)");
  AddParsed(app, "--latency-budget-us", o.latency_budget_us,
            [](const std::string& t) {
              const auto v = ParseNumber<std::uint32_t>(t, "--latency-budget-us");
              if (v > 1000000) throw std::invalid_argument("--latency-budget-us: 0..1000000");
              return v;
            },
            "longest a verdict waits in userspace before it is sent, microseconds (default 100; "
            "0 sends every receive's verdicts at once)");
  AddParsed(app, "--default-verdict", o.default_verdict,
            [](const std::string& t) { return ParseVerdict(t); },
            config::VerdictSettingChoices(false) + " (default accept)");
  AddParsed(app, "--unparseable-verdict", o.unparseable_verdict,
            [](const std::string& t) { return ParseVerdict(t); },
            "verdict for packets whose message cannot be parsed (default accept)");
  AddParsed(app, "--log-level", o.log_level, [](const std::string& t) { return ParseLogLevel(t); },
            "trace, debug, info, warn, error or off (default info)");
}

void ApplyRunOptions(const RunOptions& o, config::Config& config) {
  if (config.queues.empty()) config.queues.emplace_back();
  const bool range_flags = o.queue_first || o.queue_count || o.cpus;
  if (range_flags && config.queues.size() > 1) {
    if (o.queue_first && o.queue_count) {
      config.queues.resize(1);  // --queues replaces the configured ranges
    } else {
      throw std::invalid_argument(
          "the configuration has several queue ranges; --queue-first/--queue-count/--cpus need "
          "one (give --queues FIRST:LAST to replace them, or edit the file)");
    }
  }
  config::QueueRange& range = config.queues.front();
  if (o.queue_first) range.first = *o.queue_first;
  if (o.queue_count) range.count = *o.queue_count;
  if (o.cpus) range.cpus = *o.cpus;
  for (config::QueueRange& q : config.queues) {
    if (o.fail_open) q.fail_open = *o.fail_open;
    if (o.gso) q.gso = *o.gso;
    if (o.conntrack) q.conntrack = *o.conntrack;
    if (o.uid_gid) q.uid_gid = *o.uid_gid;
    if (o.secctx) q.secctx = *o.secctx;
    if (o.copy_mode) q.copy_mode = *o.copy_mode;
    if (o.copy_range) q.copy_range = *o.copy_range;
    if (o.queue_maxlen) q.max_length = *o.queue_maxlen;
    if (o.rcvbuf) q.receive_buffer_bytes = *o.rcvbuf;
  }
  if (o.batch_size) config.verdict.batch_size = *o.batch_size;
  if (o.flush_us) config.verdict.flush_interval_us = *o.flush_us;
  if (o.busy_poll_us) config.verdict.busy_poll_us = *o.busy_poll_us;
  if (o.latency_budget_us) config.verdict.latency_budget_us = *o.latency_budget_us;
  if (o.default_verdict) config.verdict.default_verdict = *o.default_verdict;
  if (o.unparseable_verdict) config.verdict.unparseable_verdict = *o.unparseable_verdict;
  if (o.log_level) config.log.level = *o.log_level;
}

void AddConfigFlags(CLI::App& app, std::string& config_file, ConfigFlags& flags) {
  app.add_option("-c,--config", config_file,
                 "Configuration file (TOML, see docs/configuration.md); without it the "
                 "embedded defaults. Flags override it.")
      ->check(CLI::ExistingFile);
  app.add_option("--set", flags.overrides,
                 "Override one configuration key, e.g. --set verdict.default=drop or "
                 "--set 'queues[0].count=2' (repeatable; kept across reloads)")
      ->type_name("KEY=VALUE");
  app.add_option("--check-config", flags.check_file,
                 "Check FILE (with the flags applied) and exit: 0 valid, 1 invalid. Does not "
                 "touch the kernel.")
      ->type_name("FILE");
  app.add_flag("--print-config", flags.print,
               "Print the effective configuration (file + defaults + flags) as TOML and exit");
}

}  // namespace verdictd::service
