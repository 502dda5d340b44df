#include "verdictd/rules/replay.h"

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>

#include "verdictd/base/verdict_kind.h"
#include "verdictd/config/loader.h"
#include "verdictd/rules/engine.h"
#include "verdictd/rules/rule_set.h"

namespace verdictd::rules {
namespace {

// Where the network header starts in a captured frame of this link type, and
// whether it is IP at all (-1: skip the frame).
int NetworkOffset(int link_type, const std::uint8_t* data, std::uint32_t caplen) {
  auto ip_ethertype = [](std::uint16_t type) { return type == 0x0800 || type == 0x86dd; };
  switch (link_type) {
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
      return 0;
    case DLT_NULL:
    case DLT_LOOP:
      return caplen >= 4 ? 4 : -1;
    case DLT_EN10MB: {
      std::uint32_t offset = 12;
      while (offset + 2 <= caplen) {
        const std::uint16_t type = static_cast<std::uint16_t>((data[offset] << 8) | data[offset + 1]);
        if (type == 0x8100 || type == 0x88a8) {
          offset += 4;  // VLAN tag
          continue;
        }
        return ip_ethertype(type) ? static_cast<int>(offset + 2) : -1;
      }
      return -1;
    }
    case DLT_LINUX_SLL:
      if (caplen < 16) return -1;
      return ip_ethertype(static_cast<std::uint16_t>((data[14] << 8) | data[15])) ? 16 : -1;
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2:
      if (caplen < 20) return -1;
      return ip_ethertype(static_cast<std::uint16_t>((data[0] << 8) | data[1])) ? 20 : -1;
#endif
    default:
      return -1;
  }
}

// A record's time in nanoseconds. A damaged or hostile capture can carry
// any seconds value (found by fuzzing: 3.4e10 s overflowed the product), so
// the time is clamped to 0 .. year 2096, which keeps rate-limit arithmetic
// on it far from overflow too.
std::int64_t CaptureTimeNs(const timeval& ts) {
  constexpr std::int64_t kMaxSeconds = 4'000'000'000;
  const std::int64_t seconds = std::clamp<std::int64_t>(ts.tv_sec, 0, kMaxSeconds);
  const std::int64_t micros = std::clamp<std::int64_t>(ts.tv_usec, 0, 999'999);
  return seconds * 1'000'000'000 + micros * 1'000;
}

std::string VerdictText(const queueio::Verdict& v) {
  const base::VerdictKindInfo& kind = base::VerdictKindInfoOf(v.kind);
  std::string text = kind.name;
  if (kind.has_target_queue) text += ":" + std::to_string(v.target_queue);
  char buffer[32];
  if (v.set_mark) {
    std::snprintf(buffer, sizeof buffer, "+mark=0x%x", v.mark);
    text += buffer;
  }
  if (v.set_connmark) {
    std::snprintf(buffer, sizeof buffer, "+connmark=0x%x", v.connmark);
    text += buffer;
  }
  return text;
}

std::string Describe(const PacketFields& f, HeaderStatus status) {
  if (status != HeaderStatus::kOk && status != HeaderStatus::kFragment) return HeaderStatusName(status);
  char src[INET6_ADDRSTRLEN] = "", dst[INET6_ADDRSTRLEN] = "";
  const int af = f.family == 4 ? AF_INET : AF_INET6;
  inet_ntop(af, f.src.data(), src, sizeof src);
  inet_ntop(af, f.dst.data(), dst, sizeof dst);
  std::string proto;
  switch (f.protocol) {
    case 1: proto = "icmp"; break;
    case 6: proto = "tcp"; break;
    case 17: proto = "udp"; break;
    case 58: proto = "icmpv6"; break;
    default: proto = "proto-" + std::to_string(f.protocol);
  }
  std::ostringstream out;
  out << proto << ' ';
  const bool v6 = f.family == 6;
  if (f.has_ports) {
    out << (v6 ? "[" : "") << src << (v6 ? "]" : "") << ':' << f.src_port << " > " << (v6 ? "[" : "")
        << dst << (v6 ? "]" : "") << ':' << f.dst_port;
  } else {
    out << src << " > " << dst;
  }
  if (status == HeaderStatus::kFragment) out << " fragment";
  return out.str();
}

const char* ReasonText(DecisionReason reason) {
  switch (reason) {
    case DecisionReason::kRule: return "rule";
    case DecisionReason::kNoMatch: return "no-match";
    case DecisionReason::kUnparseable: return "unparseable";
    case DecisionReason::kFragment: return "fragment";
  }
  return "?";
}

}  // namespace

int RunReplay(const ReplayOptions& options, std::ostream& out, std::ostream& err) {
  config::LoadResult loaded = options.config_path.empty()
                                  ? config::LoadDefaults()
                                  : config::LoadConfigFile(options.config_path);
  if (!loaded.ok()) {
    err << config::FormatDiagnostics(loaded.diagnostics);
    return 2;
  }
  CompileOptions compile_options;
  compile_options.allow_unknown_interfaces = true;  // offline: no interfaces to resolve
  CompileResult compiled = CompileConfig(loaded.config, compile_options);
  if (!compiled.diagnostics.empty()) {
    for (const auto& d : compiled.diagnostics) err << FormatDiagnostic(d) << '\n';
    return 2;
  }
  return ReplayCapture(compiled.rules, options, out, err);
}

int ReplayCapture(const std::shared_ptr<const RuleSet>& rules, const ReplayOptions& options,
                  std::ostream& out, std::ostream& err) {
  RuleEngine engine(rules);
  return ReplayCapture(engine, options, out, err);
}

int ReplayCapture(RuleEngine& engine, const ReplayOptions& options, std::ostream& out,
                  std::ostream& err) {
  char error[PCAP_ERRBUF_SIZE] = "";
  pcap_t* pcap = pcap_open_offline(options.pcap_path.c_str(), error);
  if (pcap == nullptr) {
    err << "replay: cannot read the capture '" << options.pcap_path << "': " << error << '\n';
    return 2;
  }
  const int link_type = pcap_datalink(pcap);
  std::map<std::string, std::uint64_t> verdicts;
  std::map<std::string, std::uint64_t> reasons;
  std::uint64_t packets = 0, skipped = 0;
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  int status = 0;
  // libpcap reads a savefile record by record with exact-size reads, so the
  // stream position before a read is where the next record starts: that is
  // the byte offset to name when the record turns out to be damaged.
  FILE* const file = pcap_file(pcap);
  long record_offset = file != nullptr ? std::ftell(file) : -1;
  for (;;) {
    if (file != nullptr) record_offset = std::ftell(file);
    status = pcap_next_ex(pcap, &header, &data);
    if (status != 1) break;
    ++packets;
    const int offset = NetworkOffset(link_type, data, header->caplen);
    if (offset < 0 || static_cast<std::uint32_t>(offset) > header->caplen) {
      ++skipped;
      if (!options.summary_only) out << packets << " skipped (not IP)\n";
      continue;
    }
    queueio::PacketView view;
    view.id = static_cast<std::uint32_t>(packets);
    view.payload = std::span<const std::uint8_t>(data + offset, header->caplen - offset);
    view.original_length = header->len > static_cast<std::uint32_t>(offset)
                               ? header->len - static_cast<std::uint32_t>(offset)
                               : 0;
    view.has_timestamp = true;
    view.timestamp_ns = CaptureTimeNs(header->ts);
    // Rate limits run on capture time; +1 so that time 0 is not "read the clock".
    const Decision decision = engine.Decide(view, view.timestamp_ns + 1);
    const std::string verdict = VerdictText(decision.verdict);
    ++verdicts[verdict];
    ++reasons[ReasonText(decision.reason)];
    if (!options.summary_only) {
      PacketFields fields;
      const HeaderStatus parsed = ParseHeaders(view.payload, fields);
      out << packets << ' ' << verdict << " rule="
          << (decision.rule >= 0 ? engine.rule_name(static_cast<std::size_t>(decision.rule))
                                 : std::string("-"))
          << " (" << ReasonText(decision.reason) << ") " << Describe(fields, parsed) << '\n';
    }
  }
  // A damaged record ends the replay as tcpdump and Suricata end theirs: the
  // verdicts of every record before it stand, the summary covers them, and
  // the damage is named by record and byte offset.
  std::string damage;
  if (status == PCAP_ERROR) {
    damage = "replay: " + options.pcap_path + ": damaged at record " + std::to_string(packets + 1) +
             (record_offset >= 0 ? " (byte offset " + std::to_string(record_offset) + ")" : "") +
             ": " + pcap_geterr(pcap) + "; the verdicts above cover the " +
             std::to_string(packets) + " records before it";
  }
  pcap_close(pcap);
  out << "summary: " << packets << " packets";
  if (skipped) out << ", " << skipped << " skipped (not IP)";
  out << '\n';
  for (const auto& [verdict, count] : verdicts) out << "  verdict " << verdict << ": " << count << '\n';
  for (const auto& [reason, count] : reasons) out << "  decided by " << reason << ": " << count << '\n';
  for (std::size_t r = 0; r < engine.rule_count(); ++r) {
    const RuleCounter& counter = engine.rule_counter(r);
    out << "  rule " << engine.rule_name(r) << ": " << counter.hits.value() << " packets, "
        << counter.bytes.value() << " bytes\n";
  }
  if (!damage.empty()) {
    out << "stopped: damaged capture at record " << packets + 1 << '\n';
    err << damage << '\n';
    return 1;
  }
  return 0;
}

int ReplayMain(int argc, char** argv) {
  ReplayOptions options;
  const char* usage = "usage: verdictd replay [--config FILE] [--summary] capture.pcap\n";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
      options.config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      options.config_path = arg.substr(9);
    } else if (arg == "--summary") {
      options.summary_only = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    } else if (!arg.empty() && arg[0] != '-' && options.pcap_path.empty()) {
      options.pcap_path = arg;
    } else {
      std::cerr << "replay: unexpected argument '" << arg << "'\n" << usage;
      return 2;
    }
  }
  if (options.pcap_path.empty()) {
    std::cerr << "replay: no capture file given\n" << usage;
    return 2;
  }
  return RunReplay(options, std::cout, std::cerr);
}

}  // namespace verdictd::rules
