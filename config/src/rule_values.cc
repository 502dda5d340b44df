// The values of the rule language: see rule_values.h.
#include "rule_values.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

#include "verdictd/base/verdict_kind.h"
#include "verdictd/config/values.h"

namespace verdictd::config {

namespace rule_syntax {

SourcePosition At(const Reporter& r, const toml::node& node) {
  const Position at = r.Where(node.source());
  return {at.file, at.line, at.column};
}

std::string DescribeRuleValue(const toml::node& node) {
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

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

std::optional<std::uint64_t> GetUnsigned(const toml::node& node, std::uint64_t max,
                                         const std::string& key, Reporter& r) {
  if (auto value = node.value_exact<std::int64_t>()) {
    if (*value < 0 || static_cast<std::uint64_t>(*value) > max) {
      r.Report(node, key, "expected an integer from 0 to " + std::to_string(max) + ", found " +
                             std::to_string(*value));
      return std::nullopt;
    }
    return static_cast<std::uint64_t>(*value);
  }
  if (auto text = node.value_exact<std::string>()) {
    std::uint64_t value = 0;
    if (ParseUnsigned(*text, value) && value <= max) return value;
  }
  r.Report(node, key, "expected an integer from 0 to " + std::to_string(max) + ", found " +
                         DescribeRuleValue(node));
  return std::nullopt;
}

std::optional<bool> GetBool(const toml::node& node, const std::string& key, Reporter& r) {
  if (auto value = node.value_exact<bool>()) return *value;
  r.Report(node, key, "expected true or false, found " + DescribeRuleValue(node));
  return std::nullopt;
}

std::optional<std::string> GetString(const toml::node& node, const std::string& key, Reporter& r) {
  if (auto value = node.value_exact<std::string>()) return *value;
  r.Report(node, key, "expected a string, found " + DescribeRuleValue(node));
  return std::nullopt;
}

std::optional<double> GetPositive(const toml::node& node, const std::string& key, Reporter& r) {
  std::optional<double> value;
  if (auto i = node.value_exact<std::int64_t>()) value = static_cast<double>(*i);
  if (auto f = node.value_exact<double>()) value = *f;
  if (!value || !(*value > 0) || *value > 1e12) {
    r.Report(node, key, "expected a positive number, found " + DescribeRuleValue(node));
    return std::nullopt;
  }
  return value;
}

}  // namespace rule_syntax

using rule_syntax::Trim;

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

namespace rule_syntax {

const std::pair<std::string_view, std::uint8_t> kProtocols[11] = {
    {"icmp", 1}, {"igmp", 2}, {"tcp", 6}, {"udp", 17}, {"gre", 47}, {"esp", 50},
    {"ah", 51}, {"icmpv6", 58}, {"ipv6-icmp", 58}, {"sctp", 132}, {"udplite", 136}};

const std::pair<std::string_view, std::uint8_t> kTcpFlags[8] = {
    {"FIN", 0x01}, {"SYN", 0x02}, {"RST", 0x04}, {"PSH", 0x08},
    {"ACK", 0x10}, {"URG", 0x20}, {"ECE", 0x40}, {"CWR", 0x80}};

const std::pair<std::string_view, CtState> kCtStates[5] = {
    {"new", CtState::kNew}, {"established", CtState::kEstablished},
    {"related", CtState::kRelated}, {"reply", CtState::kReply},
    {"untracked", CtState::kUntracked}};

const std::pair<std::string_view, ActionKind> kActions[8] = {
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
      r.Report(node, key, expected + std::to_string(*value));
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
        r.Report(node, key, "contradictory range \"" + *text + "\": low end above high end");
        return std::nullopt;
      }
      return ValueRange{static_cast<std::uint32_t>(low), static_cast<std::uint32_t>(high)};
    }
  }
  r.Report(node, key, expected + DescribeRuleValue(node));
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
        r.Report(node, key, "value \"" + *text + "\" has bits outside its mask");
        return std::nullopt;
      }
      return MaskedValue{static_cast<std::uint32_t>(value), static_cast<std::uint32_t>(mask)};
    }
  }
  r.Report(node, key, "expected a 32-bit value or \"value/mask\" (e.g. \"0x10/0xff\"), found " +
                         DescribeRuleValue(node));
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
                                        Reporter& r, bool allow_rules) {
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
  r.Report(node, key,
           "expected " + VerdictSettingChoices(true) + (allow_rules ? " or \"rules\"" : "") +
               ", found " + DescribeRuleValue(node));
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
      r.Report(element, key, "expected a prefix string or \"@set\", found " + DescribeRuleValue(element));
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
      r.Report(element, key, error);
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

}  // namespace rule_syntax
}  // namespace verdictd::config
