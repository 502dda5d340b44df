// The rule language's TOML syntax: [[rules]], [sets.NAME], rule_files and
// [rule_engine]. Every problem becomes a Diagnostic naming file:line:column,
// the key (rules[i].key, with the rule's name) and what was expected.
#include "rule_section.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "verdictd/base/verdict_kind.h"
#include "verdictd/config/values.h"

namespace verdictd::config {
namespace {

using Diags = std::vector<Diagnostic>;

constexpr std::string_view kRuleKeys[] = {
    "name",          "family",         "src",          "dst",
    "protocol",      "src_ports",      "dst_ports",    "tcp_flags",
    "icmp_type",     "icmp_code",      "in_interface", "out_interface",
    "allow_unknown_interfaces",        "mark",         "ct_state",
    "uid",           "gid",            "length",       "content",
    "action",        "queue",          "set_mark",     "then",
    "rate",          "burst",          "over_limit",   "bypass_after_packets",
    "bypass_after_bytes",              "bypass_via",   "bypass_mark",
    "log"};
constexpr std::string_view kSetKeys[] = {"prefixes", "file"};
constexpr std::string_view kEngineKeys[] = {"fragments",
                                            "flow_table_size", "rate_table_size", "log_file",
                                            "log_ring", "log_rate"};
constexpr std::string_view kContentKeys[] = {"literal", "hex", "regex", "nocase", "offset",
                                             "depth"};

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

template <std::size_t N>
std::string Nearest(std::string_view key, const std::string_view (&valid)[N]) {
  std::string_view best;
  std::size_t best_distance = 4;
  for (std::string_view candidate : valid) {
    const std::size_t d = EditDistance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + std::string(best) + "'?)";
}

// Reports problems with the position of the node they were found at.
class Reporter {
 public:
  Reporter(std::string file, Diags& out) : file_(std::move(file)), out_(out) {}
  void Error(const toml::node& node, const std::string& key, const std::string& message) {
    out_.push_back({file_, static_cast<int>(node.source().begin.line),
                    static_cast<int>(node.source().begin.column), key, message});
  }
  const std::string& file() const { return file_; }
  SourcePosition Position(const toml::node& node) const {
    return {file_, static_cast<int>(node.source().begin.line),
            static_cast<int>(node.source().begin.column)};
  }
  std::size_t count() const { return out_.size(); }

 private:
  std::string file_;
  Diags& out_;
};

std::string Describe(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "the string \"" + *node.value<std::string>() + "\"";
    case toml::node_type::integer: return "the integer " + std::to_string(*node.value<std::int64_t>());
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return *node.value<bool>() ? "true" : "false";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

bool ParseUnsigned(std::string_view text, std::uint64_t& out) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

// Calls fn(element) for a single value or for each element of an array.
template <typename Fn>
void ForEachValue(const toml::node& node, Fn&& fn) {
  if (const toml::array* array = node.as_array()) {
    for (const toml::node& element : *array) fn(element);
  } else {
    fn(node);
  }
}

std::optional<std::uint64_t> GetUnsigned(const toml::node& node, std::uint64_t max,
                                         const std::string& key, Reporter& r) {
  if (auto value = node.value_exact<std::int64_t>()) {
    if (*value < 0 || static_cast<std::uint64_t>(*value) > max) {
      r.Error(node, key, "expected an integer from 0 to " + std::to_string(max) + ", found " +
                             std::to_string(*value));
      return std::nullopt;
    }
    return static_cast<std::uint64_t>(*value);
  }
  if (auto text = node.value_exact<std::string>()) {
    std::uint64_t value = 0;
    if (ParseUnsigned(*text, value) && value <= max) return value;
  }
  r.Error(node, key, "expected an integer from 0 to " + std::to_string(max) + ", found " +
                         Describe(node));
  return std::nullopt;
}

std::optional<bool> GetBool(const toml::node& node, const std::string& key, Reporter& r) {
  if (auto value = node.value_exact<bool>()) return *value;
  r.Error(node, key, "expected true or false, found " + Describe(node));
  return std::nullopt;
}

std::optional<std::string> GetString(const toml::node& node, const std::string& key, Reporter& r) {
  if (auto value = node.value_exact<std::string>()) return *value;
  r.Error(node, key, "expected a string, found " + Describe(node));
  return std::nullopt;
}

std::optional<double> GetPositive(const toml::node& node, const std::string& key, Reporter& r) {
  std::optional<double> value;
  if (auto i = node.value_exact<std::int64_t>()) value = static_cast<double>(*i);
  if (auto f = node.value_exact<double>()) value = *f;
  if (!value || !(*value > 0) || *value > 1e12) {
    r.Error(node, key, "expected a positive number, found " + Describe(node));
    return std::nullopt;
  }
  return value;
}

}  // namespace

bool ParseCidr(std::string_view text, Cidr& out, std::string& error) {
  const std::string trimmed = Trim(text);
  std::string address = trimmed;
  int length = -1;
  if (const auto slash = trimmed.find('/'); slash != std::string::npos) {
    address = trimmed.substr(0, slash);
    std::uint64_t parsed = 0;
    if (!ParseUnsigned(std::string_view(trimmed).substr(slash + 1), parsed) || parsed > 128) {
      error = "bad prefix length in '" + trimmed + "'";
      return false;
    }
    length = static_cast<int>(parsed);
  }
  Cidr cidr;
  if (inet_pton(AF_INET, address.c_str(), cidr.bytes.data()) == 1) {
    cidr.family = 4;
    if (length < 0) length = 32;
    if (length > 32) {
      error = "IPv4 prefix length above 32 in '" + trimmed + "'";
      return false;
    }
  } else if (inet_pton(AF_INET6, address.c_str(), cidr.bytes.data()) == 1) {
    cidr.family = 6;
    if (length < 0) length = 128;
  } else {
    error = "expected an IPv4 or IPv6 address or prefix (a.b.c.d/len, x:y::/len), found '" +
            trimmed + "'";
    return false;
  }
  cidr.prefix_length = static_cast<std::uint8_t>(length);
  const int bytes = cidr.family == 4 ? 4 : 16;
  bool host_bits = false;
  for (int bit = length; bit < bytes * 8; ++bit) {
    if (cidr.bytes[bit / 8] & (0x80 >> (bit % 8))) host_bits = true;
  }
  if (host_bits) {
    Cidr masked = cidr;
    for (int bit = length; bit < bytes * 8; ++bit) masked.bytes[bit / 8] &= ~(0x80 >> (bit % 8));
    error = "'" + trimmed + "' has bits set past the prefix length (did you mean '" +
            FormatCidr(masked) + "'?)";
    return false;
  }
  out = cidr;
  return true;
}

std::string FormatCidr(const Cidr& cidr) {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(cidr.family == 4 ? AF_INET : AF_INET6, cidr.bytes.data(), buffer, sizeof buffer);
  return std::string(buffer) + "/" + std::to_string(cidr.prefix_length);
}

namespace {

const std::pair<std::string_view, std::uint8_t> kProtocols[] = {
    {"icmp", 1}, {"igmp", 2}, {"tcp", 6}, {"udp", 17}, {"gre", 47}, {"esp", 50},
    {"ah", 51}, {"icmpv6", 58}, {"ipv6-icmp", 58}, {"sctp", 132}, {"udplite", 136}};

const std::pair<std::string_view, std::uint8_t> kTcpFlags[] = {
    {"FIN", 0x01}, {"SYN", 0x02}, {"RST", 0x04}, {"PSH", 0x08},
    {"ACK", 0x10}, {"URG", 0x20}, {"ECE", 0x40}, {"CWR", 0x80}};

const std::pair<std::string_view, CtState> kCtStates[] = {
    {"new", CtState::kNew}, {"established", CtState::kEstablished},
    {"related", CtState::kRelated}, {"reply", CtState::kReply},
    {"untracked", CtState::kUntracked}};

const std::pair<std::string_view, ActionKind> kActions[] = {
    {"accept", ActionKind::kAccept}, {"drop", ActionKind::kDrop},
    {"repeat", ActionKind::kRepeat}, {"queue", ActionKind::kQueue},
    {"mark", ActionKind::kMark},     {"rate_limit", ActionKind::kRateLimit},
    {"bypass", ActionKind::kBypass}, {"inspect", ActionKind::kInspect}};

std::optional<ValueRange> ParseRange(const toml::node& node, std::uint32_t max,
                                     const std::string& key, Reporter& r) {
  const std::string expected = "expected an integer 0-" + std::to_string(max) +
                               " or a range \"low-high\", found ";
  if (auto value = node.value_exact<std::int64_t>()) {
    if (*value < 0 || *value > max) {
      r.Error(node, key, expected + std::to_string(*value));
      return std::nullopt;
    }
    return ValueRange{static_cast<std::uint32_t>(*value), static_cast<std::uint32_t>(*value)};
  }
  if (auto text = node.value_exact<std::string>()) {
    const auto dash = text->find('-');
    std::uint64_t low = 0, high = 0;
    bool ok = false;
    if (dash == std::string::npos) {
      ok = ParseUnsigned(Trim(*text), low);
      high = low;
    } else {
      ok = ParseUnsigned(Trim(std::string_view(*text).substr(0, dash)), low) &&
           ParseUnsigned(Trim(std::string_view(*text).substr(dash + 1)), high);
    }
    if (ok && low <= max && high <= max) {
      if (low > high) {
        r.Error(node, key, "contradictory range \"" + *text + "\": low end above high end");
        return std::nullopt;
      }
      return ValueRange{static_cast<std::uint32_t>(low), static_cast<std::uint32_t>(high)};
    }
  }
  r.Error(node, key, expected + Describe(node));
  return std::nullopt;
}

std::optional<MaskedValue> ParseMasked(const toml::node& node, const std::string& key,
                                       Reporter& r) {
  if (auto value = node.value_exact<std::int64_t>()) {
    if (*value >= 0 && *value <= 0xffffffffLL) return MaskedValue{static_cast<std::uint32_t>(*value), 0xffffffffu};
  }
  if (auto text = node.value_exact<std::string>()) {
    const auto slash = text->find('/');
    std::uint64_t value = 0, mask = 0xffffffffu;
    bool ok = ParseUnsigned(Trim(std::string_view(*text).substr(0, slash)), value);
    if (slash != std::string::npos) ok = ok && ParseUnsigned(Trim(std::string_view(*text).substr(slash + 1)), mask);
    if (ok && value <= 0xffffffffu && mask <= 0xffffffffu) {
      if ((value & ~mask) != 0) {
        r.Error(node, key, "value \"" + *text + "\" has bits outside its mask");
        return std::nullopt;
      }
      return MaskedValue{static_cast<std::uint32_t>(value), static_cast<std::uint32_t>(mask)};
    }
  }
  r.Error(node, key, "expected a 32-bit value or \"value/mask\" (e.g. \"0x10/0xff\"), found " +
                         Describe(node));
  return std::nullopt;
}

std::optional<std::uint8_t> ParseTcpFlagList(std::string_view list, bool& ok) {
  std::uint8_t flags = 0;
  std::string rest(list);
  std::stringstream stream(rest);
  std::string item;
  while (std::getline(stream, item, ',')) {
    std::string name = Trim(item);
    std::transform(name.begin(), name.end(), name.begin(), ::toupper);
    if (name.empty() || name == "NONE") continue;
    bool found = false;
    for (auto [flag_name, bit] : kTcpFlags) {
      if (name == flag_name) {
        flags |= bit;
        found = true;
      }
    }
    if (!found) ok = false;
  }
  return flags;
}

std::optional<VerdictSpec> ParseVerdict(const toml::node& node, const std::string& key,
                                        Reporter& r, bool allow_rules = false) {
  auto text = node.value_exact<std::string>();
  if (text) {
    // NAME or NAME:N (the target queue, decimal or 0x hex) by the verdict
    // kinds' table.
    const std::size_t colon = text->find(':');
    const std::optional<PlainVerdict> kind = base::ParseVerdictKind(text->substr(0, colon));
    std::uint64_t queue = 0;
    if (kind && !base::VerdictKindInfoOf(*kind).has_target_queue && colon == std::string::npos) {
      return VerdictSpec{*kind, 0};
    }
    if (kind && base::VerdictKindInfoOf(*kind).has_target_queue && colon != std::string::npos &&
        ParseUnsigned(std::string_view(*text).substr(colon + 1), queue) && queue <= 65535) {
      return VerdictSpec{*kind, static_cast<std::uint16_t>(queue)};
    }
  }
  r.Error(node, key,
          "expected " + VerdictSettingChoices(true) + (allow_rules ? " or \"rules\"" : "") +
              ", found " + Describe(node));
  return std::nullopt;
}

std::string VerdictText(const VerdictSpec& v) {
  return VerdictSettingText(VerdictSetting{v.kind, v.queue});
}

void ParseAddresses(const toml::node& node, const std::string& key, std::vector<Cidr>& cidrs,
                    std::vector<std::string>& sets, Reporter& r) {
  ForEachValue(node, [&](const toml::node& element) {
    auto text = element.value_exact<std::string>();
    if (!text) {
      r.Error(element, key, "expected a prefix string or \"@set\", found " + Describe(element));
      return;
    }
    if (!text->empty() && (*text)[0] == '@') {
      sets.push_back(text->substr(1));
      return;
    }
    Cidr cidr;
    std::string error;
    if (ParseCidr(*text, cidr, error)) {
      cidrs.push_back(cidr);
    } else {
      r.Error(element, key, error);
    }
  });
}

std::string HexDecode(std::string_view hex, bool& ok) {
  std::string out;
  std::string digits;
  for (char c : hex) {
    if (c == ' ' || c == ':') continue;
    digits.push_back(c);
  }
  if (digits.size() % 2 != 0 || digits.empty()) ok = false;
  for (std::size_t i = 0; ok && i + 1 < digits.size(); i += 2) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(digits.data() + i, digits.data() + i + 2, value, 16);
    if (ec != std::errc() || end != digits.data() + i + 2) ok = false;
    out.push_back(static_cast<char>(value));
  }
  return out;
}

void ParseContent(const toml::node& node, const std::string& key, RuleSpec& rule, Reporter& r) {
  ForEachValue(node, [&](const toml::node& element) {
    ContentSpec content;
    content.position = r.Position(element);
    if (auto text = element.value_exact<std::string>()) {
      content.pattern = *text;
    } else if (const toml::table* table = element.as_table()) {
      int kinds = 0;
      for (auto&& [k, value] : *table) {
        const std::string sub = key + "." + std::string(k.str());
        if (k == "literal" || k == "regex") {
          if (auto s = GetString(value, sub, r)) content.pattern = *s;
          content.regex = k == "regex";
          ++kinds;
        } else if (k == "hex") {
          bool ok = true;
          if (auto s = GetString(value, sub, r)) {
            content.pattern = HexDecode(*s, ok);
            if (!ok) r.Error(value, sub, "expected pairs of hex digits, found \"" + *s + "\"");
          }
          ++kinds;
        } else if (k == "nocase") {
          if (auto b = GetBool(value, sub, r)) content.nocase = *b;
        } else if (k == "offset") {
          if (auto v = GetUnsigned(value, 65535, sub, r)) content.offset = static_cast<std::uint32_t>(*v);
        } else if (k == "depth") {
          if (auto v = GetUnsigned(value, 65535, sub, r)) content.depth = static_cast<std::uint32_t>(*v);
        } else {
          r.Error(value, sub, "unknown key '" + std::string(k.str()) + "'" +
                                  Nearest(k.str(), kContentKeys));
        }
      }
      if (kinds != 1) {
        r.Error(element, key, "a content table needs exactly one of literal, hex or regex");
        return;
      }
    } else {
      r.Error(element, key, "expected a string or a table {literal|hex|regex, nocase, offset, depth}, found " +
                                Describe(element));
      return;
    }
    if (content.pattern.empty()) {
      r.Error(element, key, "empty pattern");
      return;
    }
    if (!content.regex && content.depth && *content.depth < content.pattern.size()) {
      r.Error(element, key, "depth " + std::to_string(*content.depth) +
                                " is shorter than the literal (" +
                                std::to_string(content.pattern.size()) + " bytes): it can never match");
      return;
    }
    rule.contents.push_back(std::move(content));
  });
}

void ParseRule(const toml::table& table, const std::string& key, RuleSpec& rule, Reporter& r) {
  rule.position = r.Position(table);
  if (auto name = table["name"].value_exact<std::string>()) rule.name = *name;
  const std::string prefix = key + (rule.name.empty() ? "" : " (" + rule.name + ")") + ".";
  const std::size_t errors_before = r.count();
  const toml::node* action_node = table.get("action");
  std::optional<ActionKind> action;
  if (action_node == nullptr) {
    r.Error(table, key, "missing 'action' (accept, drop, repeat, queue, mark, rate_limit, bypass)");
  } else if (auto text = action_node->value_exact<std::string>()) {
    for (auto [name, kind] : kActions) {
      if (*text == name) action = kind;
    }
    if (!action) {
      r.Error(*action_node, prefix + "action",
              "expected accept, drop, repeat, queue, mark, rate_limit or bypass, found \"" + *text +
                  "\"");
    }
  } else {
    r.Error(*action_node, prefix + "action", "expected a string, found " + Describe(*action_node));
  }
  if (action) rule.action.kind = *action;
  if (action == ActionKind::kBypass) rule.action.mark = MaskedValue{1, 1};
  bool has_queue = false, has_rate = false;

  auto requires_action = [&](const toml::node& node, const std::string& k,
                             std::initializer_list<ActionKind> kinds) {
    if (!action) return false;
    if (std::find(kinds.begin(), kinds.end(), *action) != kinds.end()) return true;
    r.Error(node, prefix + k, "'" + k + "' does not apply to this rule's action");
    return false;
  };

  for (auto&& [k, value] : table) {
    const std::string name(k.str());
    const std::string full = prefix + name;
    if (name == "name") {
      if (!value.is_string()) r.Error(value, full, "expected a string, found " + Describe(value));
    } else if (name == "action") {
    } else if (name == "family") {
      auto text = value.value_exact<std::string>();
      if (text && (*text == "ipv4" || *text == "inet")) rule.family = 4;
      else if (text && (*text == "ipv6" || *text == "inet6")) rule.family = 6;
      else r.Error(value, full, "expected \"ipv4\" or \"ipv6\", found " + Describe(value));
    } else if (name == "src") {
      ParseAddresses(value, full, rule.src, rule.src_sets, r);
    } else if (name == "dst") {
      ParseAddresses(value, full, rule.dst, rule.dst_sets, r);
    } else if (name == "protocol") {
      ForEachValue(value, [&](const toml::node& element) {
        if (auto number = element.value_exact<std::int64_t>(); number && *number >= 0 && *number <= 255) {
          rule.protocols.push_back(static_cast<std::uint8_t>(*number));
          return;
        }
        if (auto text = element.value_exact<std::string>()) {
          for (auto [proto_name, number] : kProtocols) {
            if (*text == proto_name) {
              rule.protocols.push_back(number);
              return;
            }
          }
        }
        r.Error(element, full, "expected a protocol name (tcp, udp, icmp, icmpv6, sctp, ...) or number 0-255, found " +
                                   Describe(element));
      });
    } else if (name == "src_ports" || name == "dst_ports") {
      auto& ports = name == "src_ports" ? rule.src_ports : rule.dst_ports;
      ForEachValue(value, [&](const toml::node& element) {
        if (auto range = ParseRange(element, 65535, full, r)) ports.push_back(*range);
      });
    } else if (name == "tcp_flags") {
      auto text = value.value_exact<std::string>();
      bool ok = text.has_value();
      MaskedValue flags{0, 0};
      if (ok) {
        const auto slash = text->find('/');
        flags.value = *ParseTcpFlagList(std::string_view(*text).substr(0, slash), ok);
        flags.mask = slash == std::string::npos
                         ? flags.value
                         : *ParseTcpFlagList(std::string_view(*text).substr(slash + 1), ok);
      }
      if (!ok) {
        r.Error(value, full, "expected \"FLAGS/MASK\" of FIN,SYN,RST,PSH,ACK,URG,ECE,CWR (e.g. \"SYN/SYN,ACK\"), found " +
                                 Describe(value));
      } else if ((flags.value & ~flags.mask) != 0) {
        r.Error(value, full, "contradictory flags \"" + *text + "\": a set flag is not in the mask");
      } else if (flags.mask == 0) {
        r.Error(value, full, "empty mask: \"" + *text + "\" would match every TCP packet");
      } else {
        rule.tcp_flags = flags;
      }
    } else if (name == "icmp_type") {
      if (auto v = GetUnsigned(value, 255, full, r)) rule.icmp_type = static_cast<std::uint8_t>(*v);
    } else if (name == "icmp_code") {
      if (auto v = GetUnsigned(value, 255, full, r)) rule.icmp_code = static_cast<std::uint8_t>(*v);
    } else if (name == "in_interface" || name == "out_interface") {
      auto& list = name == "in_interface" ? rule.in_interfaces : rule.out_interfaces;
      ForEachValue(value, [&](const toml::node& element) {
        auto text = element.value_exact<std::string>();
        if (text && !text->empty() && text->size() < 16) list.push_back(*text);
        else r.Error(element, full, "expected an interface name (1-15 characters), found " + Describe(element));
      });
    } else if (name == "allow_unknown_interfaces") {
      if (auto b = GetBool(value, full, r)) rule.allow_unknown_interfaces = *b;
    } else if (name == "mark") {
      rule.mark = ParseMasked(value, full, r);
    } else if (name == "ct_state") {
      ForEachValue(value, [&](const toml::node& element) {
        if (auto text = element.value_exact<std::string>()) {
          for (auto [state_name, state] : kCtStates) {
            if (*text == state_name) {
              rule.ct_states.push_back(state);
              return;
            }
          }
        }
        r.Error(element, full, "expected new, established, related, reply or untracked, found " +
                                   Describe(element));
      });
    } else if (name == "uid" || name == "gid") {
      auto range = ParseRange(value, 0xffffffffu, full, r);
      (name == "uid" ? rule.uid : rule.gid) = range;
    } else if (name == "length") {
      rule.length = ParseRange(value, 65535, full, r);
    } else if (name == "content") {
      ParseContent(value, full, rule, r);
    } else if (name == "queue") {
      if (requires_action(value, name, {ActionKind::kQueue})) {
        if (auto v = GetUnsigned(value, 65535, full, r)) rule.action.queue = static_cast<std::uint16_t>(*v);
        has_queue = true;
      }
    } else if (name == "set_mark") {
      if (requires_action(value, name, {ActionKind::kMark})) {
        if (auto m = ParseMasked(value, full, r)) rule.action.mark = *m;
      }
    } else if (name == "bypass_mark") {
      if (requires_action(value, name, {ActionKind::kBypass})) {
        if (auto m = ParseMasked(value, full, r)) rule.action.mark = *m;
      }
    } else if (name == "then") {
      if (requires_action(value, name, {ActionKind::kMark})) {
        auto text = value.value_exact<std::string>();
        const std::optional<PlainVerdict> then =
            text ? base::ParseVerdictKind(*text) : std::nullopt;
        if (then == PlainVerdict::kAccept || then == PlainVerdict::kRepeat) {
          rule.action.then = *then;
        } else {
          r.Error(value, full, "expected \"accept\" or \"repeat\", found " + Describe(value));
        }
      }
    } else if (name == "rate" || name == "burst") {
      if (requires_action(value, name, {ActionKind::kRateLimit})) {
        if (auto v = GetPositive(value, full, r)) (name == "rate" ? rule.action.rate : rule.action.burst) = *v;
        has_rate = has_rate || name == "rate";
      }
    } else if (name == "over_limit") {
      if (requires_action(value, name, {ActionKind::kRateLimit})) {
        if (auto v = ParseVerdict(value, full, r)) rule.action.over_limit = *v;
      }
    } else if (name == "bypass_after_packets" || name == "bypass_after_bytes") {
      if (requires_action(value, name, {ActionKind::kBypass})) {
        if (auto v = GetUnsigned(value, std::uint64_t{1} << 62, full, r)) {
          (name == "bypass_after_packets" ? rule.action.after_packets : rule.action.after_bytes) = *v;
        }
      }
    } else if (name == "bypass_via") {
      if (requires_action(value, name, {ActionKind::kBypass})) {
        auto text = value.value_exact<std::string>();
        if (text && *text == "connmark") rule.action.via = BypassVia::kConnmark;
        else if (text && *text == "mark") rule.action.via = BypassVia::kMark;
        else r.Error(value, full, "expected \"connmark\" or \"mark\", found " + Describe(value));
      }
    } else if (name == "log") {
      if (auto b = GetBool(value, full, r)) rule.log = *b;
    } else {
      r.Error(value, full, "unknown key '" + name + "'" + Nearest(name, kRuleKeys));
    }
  }
  if (rule.name.empty()) r.Error(table, key, "missing 'name' (every rule needs a unique name)");
  if (action == ActionKind::kQueue && !has_queue) {
    r.Error(table, prefix + "queue", "action \"queue\" needs 'queue = N'");
  }
  if (action == ActionKind::kRateLimit) {
    if (!has_rate) r.Error(table, prefix + "rate", "action \"rate_limit\" needs 'rate' (packets per second)");
    if (rule.action.burst == 0) rule.action.burst = rule.action.rate;
  }
  if (rule.family && r.count() == errors_before) {
    for (const auto* list : {&rule.src, &rule.dst}) {
      for (const Cidr& cidr : *list) {
        if (cidr.family != *rule.family) {
          r.Error(table, prefix + "family",
                  "contradiction: family ipv" + std::to_string(*rule.family) +
                      " with the ipv" + std::to_string(cidr.family) + " prefix " + FormatCidr(cidr));
        }
      }
    }
  }
}

void ParseSet(const toml::node& node, const std::string& name, const std::string& key,
              PrefixSetSpec& set, const std::filesystem::path& base, Reporter& r) {
  set.name = name;
  set.position = r.Position(node);
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    r.Error(node, key, "expected a table {prefixes = [...], file = \"path\"}, found " + Describe(node));
    return;
  }
  for (auto&& [k, value] : *table) {
    const std::string full = key + "." + std::string(k.str());
    if (k == "prefixes") {
      std::vector<std::string> names;
      ParseAddresses(value, full, set.prefixes, names, r);
      if (!names.empty()) r.Error(value, full, "sets cannot reference other sets");
    } else if (k == "file") {
      if (auto path = GetString(value, full, r)) {
        set.file = std::filesystem::absolute(base / *path).lexically_normal().string();
      }
    } else {
      r.Error(value, full, "unknown key '" + std::string(k.str()) + "'" + Nearest(k.str(), kSetKeys));
    }
  }
}

void ParseRulesAndSets(const toml::table& root, const std::string& file,
                       std::vector<RuleSpec>& rules, std::vector<PrefixSetSpec>& sets,
                       const std::filesystem::path& base, Reporter& r) {
  if (const toml::node* node = root.get("rules")) {
    const toml::array* array = node->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      r.Error(*node, "rules", "expected an array of tables ([[rules]]), found " + Describe(*node));
    } else {
      for (std::size_t i = 0; i < array->size(); ++i) {
        RuleSpec rule;
        ParseRule(*(*array)[i].as_table(), "rules[" + std::to_string(i) + "]", rule, r);
        rules.push_back(std::move(rule));
      }
    }
  }
  if (const toml::node* node = root.get("sets")) {
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      r.Error(*node, "sets", "expected a table of sets ([sets.NAME]), found " + Describe(*node));
    } else {
      for (auto&& [k, value] : *table) {
        PrefixSetSpec set;
        ParseSet(value, std::string(k.str()), "sets." + std::string(k.str()), set, base, r);
        sets.push_back(std::move(set));
      }
    }
  }
  (void)file;
}

std::filesystem::path BaseDirectory(std::string_view file) {
  if (file.empty() || file.front() == '<') return std::filesystem::current_path();
  return std::filesystem::absolute(std::filesystem::path(file)).parent_path();
}

void ParseEngine(const toml::node& node, RuleEngineSettings& engine, Reporter& r) {
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    r.Error(node, "rule_engine", "expected a table, found " + Describe(node));
    return;
  }
  for (auto&& [k, value] : *table) {
    const std::string name(k.str());
    const std::string full = "rule_engine." + name;
    if (name == "fragments") {
      if (value.value_exact<std::string>() == std::optional<std::string>("rules")) {
        engine.fragments_use_rules = true;
      } else if (auto v = ParseVerdict(value, full, r, true)) {
        engine.fragments_use_rules = false;
        engine.fragments = *v;
      }
    } else if (name == "flow_table_size" || name == "rate_table_size" || name == "log_ring") {
      if (auto v = GetUnsigned(value, std::uint64_t{1} << 24, full, r)) {
        if (*v == 0) {
          r.Error(value, full, "expected at least 1, found 0");
        } else {
          (name == "flow_table_size" ? engine.flow_table_size
           : name == "rate_table_size" ? engine.rate_table_size
                                       : engine.log_ring) = static_cast<std::uint32_t>(*v);
        }
      }
    } else if (name == "log_file") {
      if (auto s = GetString(value, full, r)) engine.log_file = *s;
    } else if (name == "log_rate") {
      if (auto v = GetPositive(value, full, r)) engine.log_rate = *v;
    } else {
      r.Error(value, full, "unknown key '" + name + "'" + Nearest(name, kEngineKeys));
    }
  }
}

}  // namespace

void ParseRulesSection(const toml::table& root, std::string_view file, RulesSection& out,
                       std::vector<Diagnostic>& diagnostics) {
  const std::size_t first_diagnostic = diagnostics.size();
  Reporter r{std::string(file), diagnostics};
  const std::filesystem::path base = BaseDirectory(file);
  ParseRulesAndSets(root, std::string(file), out.rules, out.sets, base, r);
  if (const toml::node* node = root.get("rule_engine")) ParseEngine(*node, out.engine, r);
  if (const toml::node* node = root.get("rule_files")) {
    ForEachValue(*node, [&](const toml::node& element) {
      auto path = element.value_exact<std::string>();
      if (!path) {
        r.Error(element, "rule_files", "expected a file name, found " + Describe(element));
        return;
      }
      const std::string resolved = std::filesystem::absolute(base / *path).lexically_normal().string();
      out.include_files.push_back(resolved);
      toml::table included;
      if (std::ifstream probe(resolved); !probe) {
        r.Error(element, "rule_files", "cannot read rule file '" + resolved + "' (check the path and permissions)");
        return;
      }
      try {
        included = toml::parse_file(resolved);
      } catch (const toml::parse_error& error) {
        diagnostics.push_back({resolved, static_cast<int>(error.source().begin.line),
                               static_cast<int>(error.source().begin.column), "rule_files",
                               std::string(error.description())});
        return;
      } catch (const std::exception& error) {
        r.Error(element, "rule_files", "cannot read rule file '" + resolved + "': " + error.what());
        return;
      }
      Reporter inner{resolved, diagnostics};
      for (auto&& [k, value] : included) {
        if (k != "rules" && k != "sets") {
          inner.Error(value, std::string(k.str()),
                      "unknown key in a rule file (only [[rules]] and [sets.NAME] belong here)");
        }
      }
      ParseRulesAndSets(included, resolved, out.included_rules, out.included_sets,
                        std::filesystem::path(resolved).parent_path(), inner);
    });
  }

  // Names are unique (they label metrics and logs); set references resolve.
  std::map<std::string, const RuleSpec*> rule_names;
  for (const auto* list : {&out.rules, &out.included_rules}) {
    for (const RuleSpec& rule : *list) {
      if (rule.name.empty()) continue;
      auto [it, inserted] = rule_names.emplace(rule.name, &rule);
      if (!inserted) {
        diagnostics.push_back({rule.position.file, rule.position.line, rule.position.column,
                               "rules (" + rule.name + ").name",
                               "duplicate rule name '" + rule.name + "' (first at " +
                                   it->second->position.file + ":" +
                                   std::to_string(it->second->position.line) + ")"});
      }
    }
  }
  std::set<std::string> set_names;
  for (const auto* list : {&out.sets, &out.included_sets}) {
    for (const PrefixSetSpec& set : *list) {
      if (!set_names.insert(set.name).second) {
        diagnostics.push_back({set.position.file, set.position.line, set.position.column,
                               "sets." + set.name, "duplicate set name '" + set.name + "'"});
      }
    }
  }
  for (const auto* list : {&out.rules, &out.included_rules}) {
    for (const RuleSpec& rule : *list) {
      for (const auto* names : {&rule.src_sets, &rule.dst_sets}) {
        for (const std::string& name : *names) {
          if (set_names.count(name) == 0) {
            diagnostics.push_back({rule.position.file, rule.position.line, rule.position.column,
                                   "rules (" + rule.name + ")",
                                   "unknown set '@" + name + "' (define it as [sets." + name + "])"});
          }
        }
      }
    }
  }
  // Report in source order: files in the order they were read, then line, column.
  std::vector<std::string> files;
  for (std::size_t i = first_diagnostic; i < diagnostics.size(); ++i) {
    if (std::find(files.begin(), files.end(), diagnostics[i].file) == files.end()) {
      files.push_back(diagnostics[i].file);
    }
  }
  auto file_rank = [&](const std::string& f) { return std::find(files.begin(), files.end(), f) - files.begin(); };
  std::stable_sort(diagnostics.begin() + static_cast<std::ptrdiff_t>(first_diagnostic), diagnostics.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) {
                     const auto fa = file_rank(a.file), fb = file_rank(b.file);
                     if (fa != fb) return fa < fb;
                     if (a.line != b.line) return a.line < b.line;
                     return a.column < b.column;
                   });
}

namespace {

toml::array RangesToArray(const std::vector<ValueRange>& ranges) {
  toml::array array;
  for (const ValueRange& range : ranges) {
    if (range.low == range.high) array.push_back(static_cast<std::int64_t>(range.low));
    else array.push_back(std::to_string(range.low) + "-" + std::to_string(range.high));
  }
  return array;
}

std::string RangeText(const ValueRange& range) {
  return std::to_string(range.low) + "-" + std::to_string(range.high);
}

std::string MaskedText(const MaskedValue& m) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "0x%x/0x%x", m.value, m.mask);
  return buffer;
}

std::string FlagsText(std::uint8_t flags) {
  std::string out;
  for (auto [name, bit] : kTcpFlags) {
    if (flags & bit) out += (out.empty() ? "" : ",") + std::string(name);
  }
  return out;
}

toml::array AddressArray(const std::vector<Cidr>& cidrs, const std::vector<std::string>& sets) {
  toml::array array;
  for (const Cidr& cidr : cidrs) array.push_back(FormatCidr(cidr));
  for (const std::string& set : sets) array.push_back("@" + set);
  return array;
}

bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

toml::table RuleToTable(const RuleSpec& rule) {
  toml::table t;
  t.insert("name", rule.name);
  if (rule.family) t.insert("family", *rule.family == 4 ? "ipv4" : "ipv6");
  if (!rule.src.empty() || !rule.src_sets.empty()) t.insert("src", AddressArray(rule.src, rule.src_sets));
  if (!rule.dst.empty() || !rule.dst_sets.empty()) t.insert("dst", AddressArray(rule.dst, rule.dst_sets));
  if (!rule.protocols.empty()) {
    toml::array array;
    for (auto p : rule.protocols) array.push_back(static_cast<std::int64_t>(p));
    t.insert("protocol", array);
  }
  if (!rule.src_ports.empty()) t.insert("src_ports", RangesToArray(rule.src_ports));
  if (!rule.dst_ports.empty()) t.insert("dst_ports", RangesToArray(rule.dst_ports));
  if (rule.tcp_flags) {
    t.insert("tcp_flags", FlagsText(static_cast<std::uint8_t>(rule.tcp_flags->value)) + "/" +
                              FlagsText(static_cast<std::uint8_t>(rule.tcp_flags->mask)));
  }
  if (rule.icmp_type) t.insert("icmp_type", static_cast<std::int64_t>(*rule.icmp_type));
  if (rule.icmp_code) t.insert("icmp_code", static_cast<std::int64_t>(*rule.icmp_code));
  for (const auto& [key, list] : {std::pair{"in_interface", &rule.in_interfaces},
                                  std::pair{"out_interface", &rule.out_interfaces}}) {
    if (list->empty()) continue;
    toml::array array;
    for (const auto& name : *list) array.push_back(name);
    t.insert(key, array);
  }
  if (rule.allow_unknown_interfaces) t.insert("allow_unknown_interfaces", true);
  if (rule.mark) t.insert("mark", MaskedText(*rule.mark));
  if (!rule.ct_states.empty()) {
    toml::array array;
    for (CtState state : rule.ct_states) {
      for (auto [name, s] : kCtStates) {
        if (s == state) array.push_back(std::string(name));
      }
    }
    t.insert("ct_state", array);
  }
  if (rule.uid) t.insert("uid", RangeText(*rule.uid));
  if (rule.gid) t.insert("gid", RangeText(*rule.gid));
  if (rule.length) t.insert("length", RangeText(*rule.length));
  if (!rule.contents.empty()) {
    toml::array array;
    for (const ContentSpec& c : rule.contents) {
      toml::table entry;
      if (c.regex) {
        entry.insert("regex", c.pattern);
      } else if (Printable(c.pattern)) {
        entry.insert("literal", c.pattern);
      } else {
        std::string hex;
        char buffer[4];
        for (unsigned char byte : c.pattern) {
          std::snprintf(buffer, sizeof buffer, "%02x", byte);
          hex += buffer;
        }
        entry.insert("hex", hex);
      }
      if (c.nocase) entry.insert("nocase", true);
      if (c.offset) entry.insert("offset", static_cast<std::int64_t>(c.offset));
      if (c.depth) entry.insert("depth", static_cast<std::int64_t>(*c.depth));
      array.push_back(std::move(entry));
    }
    t.insert("content", array);
  }
  const ActionSpec& a = rule.action;
  for (auto [name, kind] : kActions) {
    if (kind == a.kind) t.insert("action", std::string(name));
  }
  switch (a.kind) {
    case ActionKind::kQueue: t.insert("queue", static_cast<std::int64_t>(a.queue)); break;
    case ActionKind::kMark:
      t.insert("set_mark", MaskedText(a.mark));
      t.insert("then", std::string(base::VerdictKindName(a.then)));
      break;
    case ActionKind::kRateLimit:
      t.insert("rate", a.rate);
      t.insert("burst", a.burst);
      t.insert("over_limit", VerdictText(a.over_limit));
      break;
    case ActionKind::kBypass:
      t.insert("bypass_mark", MaskedText(a.mark));
      t.insert("bypass_after_packets", static_cast<std::int64_t>(a.after_packets));
      t.insert("bypass_after_bytes", static_cast<std::int64_t>(a.after_bytes));
      t.insert("bypass_via", a.via == BypassVia::kMark ? "mark" : "connmark");
      break;
    default: break;
  }
  if (rule.log) t.insert("log", true);
  return t;
}

}  // namespace

void PrintRulesSection(const RulesSection& rules, toml::table& root) {
  if (!rules.rules.empty()) {
    toml::array array;
    for (const RuleSpec& rule : rules.rules) array.push_back(RuleToTable(rule));
    root.insert_or_assign("rules", std::move(array));
  }
  if (!rules.sets.empty()) {
    toml::table sets;
    for (const PrefixSetSpec& set : rules.sets) {
      toml::table entry;
      if (!set.prefixes.empty()) entry.insert("prefixes", AddressArray(set.prefixes, {}));
      if (!set.file.empty()) entry.insert("file", set.file);
      sets.insert(set.name, std::move(entry));
    }
    root.insert_or_assign("sets", std::move(sets));
  }
  if (!rules.include_files.empty()) {
    toml::array files;
    for (const auto& path : rules.include_files) files.push_back(path);
    root.insert_or_assign("rule_files", std::move(files));
  }
  const RuleEngineSettings& e = rules.engine;
  if (e == RuleEngineSettings{}) return;  // defaults: documented in docs/rules.md
  toml::table engine;
  engine.insert("fragments", e.fragments_use_rules ? std::string("rules") : VerdictText(e.fragments));
  engine.insert("flow_table_size", static_cast<std::int64_t>(e.flow_table_size));
  engine.insert("rate_table_size", static_cast<std::int64_t>(e.rate_table_size));
  engine.insert("log_file", e.log_file);
  engine.insert("log_ring", static_cast<std::int64_t>(e.log_ring));
  engine.insert("log_rate", e.log_rate);
  root.insert_or_assign("rule_engine", std::move(engine));
}

const std::vector<std::string_view>& RuleSectionKeys() {
  static const std::vector<std::string_view> keys{"rules", "sets", "rule_files", "rule_engine"};
  return keys;
}

}  // namespace verdictd::config
