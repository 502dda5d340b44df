// The key table of every section verdictd reads itself (see key_table.h).
// The order of each table is the order --print-config prints the keys in
// and the "valid in ..." list of an unknown-key message names them in.
#include "key_table.h"

#include <array>
#include <sstream>
#include <type_traits>

#include "toml_reader.h"
#include "verdictd/base/verdict_kind.h"
#include "verdictd/config/limits.h"
#include "verdictd/config/values.h"

namespace verdictd::config {

namespace {

template <typename T>
struct MemberOf;
template <typename S, typename T>
struct MemberOf<T S::*> {
  using Section = S;
  using Value = T;
};
template <auto M>
using SectionOf = typename MemberOf<decltype(M)>::Section;
template <auto M>
using ValueOf = typename MemberOf<decltype(M)>::Value;

constexpr std::array<std::string_view, base::kVerdictKindCount> kVerdictWords =
    base::VerdictSettingWords();
constexpr std::array<std::string_view, 2> kCopyModeWords{"packet", "meta"};
constexpr std::array<std::string_view, 6> kLogWords{"trace", "debug", "info",
                                                    "warn",  "error", "off"};

std::string CpuListText(const std::vector<int>& cpus, const char* separator) {
  std::string text;
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    if (i > 0) text += separator;
    text += std::to_string(cpus[i]);
  }
  return text;
}

// The fields every key has; read, print and check come from the type.
template <auto M>
Key<SectionOf<M>> Base(std::string_view name, KeyType type, Reload reload,
                       std::string_view help) {
  using S = SectionOf<M>;
  using T = ValueOf<M>;
  Key<S> key;
  key.name = name;
  key.type = type;
  key.reload = reload;
  key.help = help;
  key.same = [](const S& a, const S& b) { return a.*M == b.*M; };
  key.log_text = [](const S& s) -> std::string {
    if constexpr (std::is_same_v<T, bool>) {
      return s.*M ? "1" : "0";
    } else if constexpr (std::is_enum_v<T>) {
      return std::to_string(static_cast<int>(s.*M));
    } else if constexpr (std::is_integral_v<T>) {
      return std::to_string(s.*M);
    } else if constexpr (std::is_same_v<T, std::string>) {
      return s.*M;
    } else if constexpr (std::is_same_v<T, VerdictSetting>) {
      return VerdictSettingText(s.*M);
    } else {
      return CpuListText(s.*M, ",");
    }
  };
  return key;
}

template <auto M>
Key<SectionOf<M>> Int(std::string_view name, std::int64_t min, std::int64_t max, Reload reload,
                      std::string_view help) {
  using S = SectionOf<M>;
  Key<S> key = Base<M>(name, KeyType::kInteger, reload, help);
  key.min = min;
  key.max = max;
  key.read = [](TomlReader& reader, const toml::table& table, const std::string& prefix,
                const Key<S>& k, S& s) {
    std::int64_t value = 0;
    if (reader.ReadInt(table, prefix, k.name, k.min, k.max, value)) {
      s.*M = static_cast<ValueOf<M>>(value);
    }
  };
  key.print = [](std::ostream& out, const S& s) { out << s.*M; };
  key.check = [](const S& s, const std::string& full, const Key<S>& k, const SourceMap& map,
                 std::vector<Diagnostic>& out) {
    const auto value = static_cast<std::int64_t>(s.*M);
    if (value >= k.min && value <= k.max) return;
    out.push_back(MakeDiagnostic(
        map.Find(full), full,
        "an integer from " + std::to_string(k.min) + " to " + std::to_string(k.max),
        "integer " + std::to_string(value)));
  };
  return key;
}

template <auto M>
Key<SectionOf<M>> Bool(std::string_view name, Reload reload, std::string_view help) {
  using S = SectionOf<M>;
  Key<S> key = Base<M>(name, KeyType::kBoolean, reload, help);
  key.read = [](TomlReader& reader, const toml::table& table, const std::string& prefix,
                const Key<S>& k, S& s) { reader.ReadBool(table, prefix, k.name, s.*M); };
  key.print = [](std::ostream& out, const S& s) { out << (s.*M ? "true" : "false"); };
  return key;
}

template <auto M>
Key<SectionOf<M>> Text(std::string_view name, std::string (*problem)(std::string_view),
                       Reload reload, std::string_view help) {
  using S = SectionOf<M>;
  Key<S> key = Base<M>(name, KeyType::kString, reload, help);
  key.problem = problem;
  key.read = [](TomlReader& reader, const toml::table& table, const std::string& prefix,
                const Key<S>& k, S& s) {
    reader.ReadText(table, prefix, k.name, k.problem, s.*M);
  };
  key.print = [](std::ostream& out, const S& s) { out << TomlQuote(s.*M); };
  key.check = [](const S& s, const std::string& full, const Key<S>& k, const SourceMap& map,
                 std::vector<Diagnostic>& out) {
    if (std::string expected = k.problem(s.*M); !expected.empty()) {
      out.push_back(MakeDiagnostic(map.Find(full), full, std::move(expected),
                                   "string " + QuoteForMessage(s.*M)));
    }
  };
  return key;
}

// A word of `words`; Parse gives the value (or nullopt), Print its word.
template <auto M, auto Parse, auto Print>
Key<SectionOf<M>> Choice(std::string_view name, std::span<const std::string_view> words,
                         KeyType type, Reload reload, std::string_view help) {
  using S = SectionOf<M>;
  Key<S> key = Base<M>(name, type, reload, help);
  key.words = words;
  key.read = [](TomlReader& reader, const toml::table& table, const std::string& prefix,
                const Key<S>& k, S& s) {
    reader.ReadChoice(table, prefix, k.name, k.words, Parse, s.*M);
  };
  key.print = [](std::ostream& out, const S& s) { out << TomlQuote(Print(s.*M)); };
  return key;
}

template <auto M>
Key<SectionOf<M>> Verdict(std::string_view name, Reload reload, std::string_view help) {
  return Choice<M, &ParseVerdictSetting, &VerdictSettingText>(name, kVerdictWords,
                                                              KeyType::kVerdict, reload, help);
}

template <auto M>
Key<SectionOf<M>> Cpus(std::string_view name, Reload reload, std::string_view help) {
  using S = SectionOf<M>;
  Key<S> key = Base<M>(name, KeyType::kCpuList, reload, help);
  key.read = [](TomlReader& reader, const toml::table& table, const std::string& prefix,
                const Key<S>& k, S& s) { reader.ReadCpus(table, prefix, k.name, s.*M); };
  key.print = [](std::ostream& out, const S& s) { out << '[' << CpuListText(s.*M, ", ") << ']'; };
  key.check = [](const S& s, const std::string& full, const Key<S>&, const SourceMap& map,
                 std::vector<Diagnostic>& out) {
    const std::vector<int>& cpus = s.*M;
    for (std::size_t j = 0; j < cpus.size(); ++j) {
      if (cpus[j] >= 0 && cpus[j] <= limits::kMaxCpuId) continue;
      const std::string element = full + "[" + std::to_string(j) + "]";
      out.push_back(MakeDiagnostic(
          map.Find(element), element,
          "an integer from 0 to " + std::to_string(limits::kMaxCpuId),
          "integer " + std::to_string(cpus[j])));
    }
  };
  return key;
}

template <typename S>
Key<S> LiveIf(Key<S> key, std::type_identity_t<bool (*)(const S&, const S&)> live_if) {
  key.live_if = live_if;
  return key;
}

template <typename S>
Key<S> Noted(Key<S> key, std::type_identity_t<const char* (*)(const S&)> note) {
  key.note = note;
  return key;
}

template <typename S>
Key<S> Required(Key<S> key) {
  key.required = true;
  return key;
}

constexpr Reload kLive = Reload::kLive;
constexpr Reload kRestart = Reload::kRestart;
constexpr Reload kRange = Reload::kQueueRange;
constexpr Reload kSetting = Reload::kQueueSetting;

}  // namespace

KeyTable<VerdictSection> VerdictKeys() {
  using S = VerdictSection;
  static const Key<S> keys[] = {
      Verdict<&S::default_verdict>("default", kLive, "verdict for every packet nothing else decides"),
      Verdict<&S::unparseable_verdict>("unparseable", kLive,
                                       "verdict for packets whose headers cannot be parsed"),
      // Workers size their verdict tables once, at start, for
      // max(batch size then, the live capacity): only a batch size beyond
      // that needs a restart. `a` is the running configuration; its batch
      // size may be lower than the one at start, which only makes this
      // stricter than needed, never looser.
      LiveIf(Int<&S::batch_size>("batch_size", limits::kMinBatchSize, limits::kMaxBatchSize,
                                 kLive, "verdicts a worker holds before one send"),
             [](const S& a, const S& b) {
               return b.batch_size <= limits::LiveBatchCapacity(a.batch_size);
             }),
      Int<&S::flush_interval_us>("flush_interval_us", 0, limits::kMaxFlushMicros, kLive,
                                 "a ceiling on the latency budget, in microseconds"),
      Int<&S::busy_poll_us>("busy_poll_us", 0, limits::kMaxBusyPollMicros, kLive,
                            "microseconds a worker spins on an empty queue before sleeping"),
      Int<&S::latency_budget_us>("latency_budget_us", 0, limits::kMaxLatencyBudgetMicros, kLive,
                                 "longest a verdict may wait in userspace, in microseconds"),
  };
  return keys;
}

KeyTable<LogSection> LogKeys() {
  using S = LogSection;
  static const Key<S> keys[] = {
      Choice<&S::level, &ParseLogLevel, &LogLevelText>("level", kLogWords, KeyType::kChoice,
                                                       kLive, "least severe message logged"),
  };
  return keys;
}

KeyTable<MetricsSection> MetricsKeys() {
  using S = MetricsSection;
  static const Key<S> keys[] = {
      Bool<&S::enabled>("enabled", kRestart, "serve Prometheus metrics"),
      Text<&S::listen>("listen", ListenProblem, kRestart, "host:port of the scrape endpoint"),
  };
  return keys;
}

KeyTable<ControlSection> ControlKeys() {
  using S = ControlSection;
  static const Key<S> keys[] = {
      Bool<&S::enabled>("enabled", kRestart, "serve the control socket (verdictd ctl)"),
      Text<&S::socket>("socket", SocketPathProblem, kRestart,
                       "absolute path of the control socket"),
  };
  return keys;
}

KeyTable<ProcessSection> ProcessKeys() {
  using S = ProcessSection;
  static const Key<S> keys[] = {
      Text<&S::user>("user", UserProblem, kRestart,
                     "user to run as once the queues are bound; \"\" keeps the starting user"),
  };
  return keys;
}

KeyTable<QueueRange> QueueKeys() {
  using S = QueueRange;
  static const Key<S> keys[] = {
      Int<&S::first>("first", 0, limits::kMaxQueueNumber, kRange,
                     "first queue number of the range"),
      Noted(Int<&S::count>("count", 0, limits::kMaxQueueNumber, kRange,
                           "queues (and workers) in the range; 0: one per online CPU"),
            [](const S& s) { return s.count == 0 ? "  # one queue per online CPU" : ""; }),
      Cpus<&S::cpus>("cpus", kRange, "CPU of each queue's worker; empty: as fanout feeds them"),
      Choice<&S::copy_mode, &ParseCopyMode, &CopyModeText>(
          "copy_mode", kCopyModeWords, KeyType::kChoice, kSetting,
          "\"packet\": packet bytes are copied; \"meta\": metadata only"),
      Int<&S::copy_range>("copy_range", 0, limits::kMaxCopyRange, kSetting,
                          "bytes of each packet copied in packet mode"),
      Int<&S::max_length>("max_length", limits::kMinMaxLength, limits::kMaxMaxLength, kSetting,
                          "packets the kernel queue holds"),
      Bool<&S::fail_open>("fail_open", kSetting, "a full queue accepts instead of dropping"),
      Bool<&S::gso>("gso", kSetting, "receive GSO/GRO packets whole"),
      Bool<&S::conntrack>("conntrack", kSetting, "ask for conntrack state with each packet"),
      Bool<&S::uid_gid>("uid_gid", kSetting, "ask for the owning socket's uid and gid"),
      Bool<&S::secctx>("secctx", kSetting, "ask for each packet's security context"),
      Int<&S::receive_buffer_bytes>("receive_buffer_bytes", limits::kMinReceiveBuffer,
                                    limits::kMaxReceiveBuffer, kSetting,
                                    "netlink receive buffer of each queue socket"),
      Int<&S::receive_batch>("receive_batch", limits::kMinReceiveBatch, limits::kMaxReceiveBatch,
                             kSetting, "messages received per recvmmsg call"),
  };
  return keys;
}

KeyTable<ExtensionsSection> ExtensionHostKeys() {
  using S = ExtensionsSection;
  // The pending tables and the arena are sized once, at start.
  static const Key<S> keys[] = {
      Text<&S::directory>("directory", DirectoryProblem, kLive,
                          "the only directory extensions load from"),
      Int<&S::arena_concurrency>("arena_concurrency", 1, 256, kRestart,
                                 "threads of the arena asynchronous work runs in"),
      Int<&S::pending_slots>("pending_slots", 1, 65535, kRestart,
                             "packets a worker may hold for an asynchronous verdict"),
      Int<&S::pending_timeout_ms>("pending_timeout_ms", 1, 600'000, kLive,
                                  "deadline of a pending packet, in milliseconds"),
      Int<&S::max_packet_bytes>("max_packet_bytes", 576, 65535, kRestart,
                                "longest rewritten packet, and bytes kept of a pending one"),
      Verdict<&S::timeout_verdict>("timeout_verdict", kLive,
                                   "verdict of a pending packet past its deadline"),
      Verdict<&S::overflow_verdict>("overflow_verdict", kLive,
                                    "verdict of a packet that finds the pending table full"),
      Verdict<&S::end_verdict>("end_verdict", kLive,
                               "verdict of a packet every extension passed on"),
  };
  return keys;
}

KeyTable<ExtensionEntry> ExtensionKeys() {
  using S = ExtensionEntry;
  // A new chain is built for the next policy; extensions kept by name, file
  // and parameters stay loaded, the others load or unload.
  static const Key<S> keys[] = {
      Required(Text<&S::name>("name", ExtensionNameProblem, kLive,
                              "the extension's own name; unique in the chain")),
      Text<&S::file>("file", ExtensionFileProblem, kLive,
                     "file name inside the directory; \"\": NAME.so"),
      Text<&S::parameters>("parameters", ParametersProblem, kLive,
                           "passed to the extension's load()"),
      Int<&S::group>("group", 0, 0xffffffffLL, kLive,
                     "mark mask: runs when mark & group != 0; 0: every packet"),
      Bool<&S::started>("started", kLive, "false: loaded but skipped until started"),
  };
  return keys;
}

namespace {

template <typename S>
void AppendKeys(std::vector<KeyInfo>& out, std::string_view section, KeyTable<S> keys) {
  const S defaults{};
  for (const Key<S>& key : keys) {
    KeyInfo info;
    info.section = std::string(section);
    info.name = std::string(key.name);
    info.type = key.type;
    info.min = key.min;
    info.max = key.max;
    if (key.required) {
      info.default_value = "required";
    } else {
      std::ostringstream value;
      key.print(value, defaults);
      info.default_value = value.str();
    }
    info.help = std::string(key.help);
    info.reload = key.reload;
    out.push_back(std::move(info));
  }
}

}  // namespace

std::vector<KeyInfo> DescribeKeys() {
  std::vector<KeyInfo> keys;
  AppendKeys(keys, "[verdict]", VerdictKeys());
  AppendKeys(keys, "[log]", LogKeys());
  AppendKeys(keys, "[metrics]", MetricsKeys());
  AppendKeys(keys, "[control]", ControlKeys());
  AppendKeys(keys, "[process]", ProcessKeys());
  AppendKeys(keys, "[[queues]]", QueueKeys());
  AppendKeys(keys, "[extension_host]", ExtensionHostKeys());
  AppendKeys(keys, "[[extensions]]", ExtensionKeys());
  return keys;
}

}  // namespace verdictd::config
