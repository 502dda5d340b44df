#include "verdictd/config/rule_section.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace verdictd::config {
namespace {

using verdictd::rules::testing::Joined;
using verdictd::rules::testing::ParseSection;

TEST(RuleSection, parses_every_condition_and_action) {
  std::vector<Diagnostic> diagnostics;
  RulesSection s = ParseSection(R"(
[[rules]]
name = "all"
family = "ipv4"
src = ["10.0.0.0/8", "@blocked"]
dst = "192.0.2.1"
protocol = ["tcp", 17]
src_ports = [53, "1024-65535"]
dst_ports = 80
tcp_flags = "SYN/SYN,ACK"
in_interface = "eth0"
out_interface = ["eth1", "eth2"]
allow_unknown_interfaces = true
mark = "0x10/0xf0"
ct_state = ["new", "established"]
uid = "1000-2000"
gid = 100
length = "0-1500"
content = ["GET", { literal = "host:", nocase = true, offset = 4, depth = 200 }, { regex = "a+b" }, { hex = "0d 0a" }]
action = "rate_limit"
rate = 100
burst = 20
over_limit = "queue:4"
log = true

[[rules]]
name = "b"
action = "bypass"
bypass_after_packets = 10
bypass_via = "mark"

[sets.blocked]
prefixes = ["2001:db8::/32"]
)", diagnostics);
  ASSERT_TRUE(diagnostics.empty()) << Joined(diagnostics);
  ASSERT_EQ(s.rules.size(), 2u);
  const RuleSpec& r = s.rules[0];
  EXPECT_EQ(r.name, "all");
  EXPECT_EQ(r.position.line, 2);
  EXPECT_EQ(r.family, 4);
  ASSERT_EQ(r.src.size(), 1u);
  EXPECT_EQ(FormatCidr(r.src[0]), "10.0.0.0/8");
  EXPECT_EQ(r.src_sets, std::vector<std::string>{"blocked"});
  EXPECT_EQ(FormatCidr(r.dst.at(0)), "192.0.2.1/32");
  EXPECT_EQ(r.protocols, (std::vector<std::uint8_t>{6, 17}));
  EXPECT_EQ(r.src_ports, (std::vector<ValueRange>{{53, 53}, {1024, 65535}}));
  EXPECT_EQ(r.dst_ports, (std::vector<ValueRange>{{80, 80}}));
  EXPECT_EQ(r.tcp_flags, (MaskedValue{0x02, 0x12}));
  EXPECT_EQ(r.out_interfaces.size(), 2u);
  EXPECT_EQ(r.mark, (MaskedValue{0x10, 0xf0}));
  EXPECT_EQ(r.ct_states, (std::vector<CtState>{CtState::kNew, CtState::kEstablished}));
  EXPECT_EQ(r.uid, (ValueRange{1000, 2000}));
  EXPECT_EQ(r.gid, (ValueRange{100, 100}));
  ASSERT_EQ(r.contents.size(), 4u);
  EXPECT_EQ(r.contents[1].offset, 4u);
  EXPECT_EQ(r.contents[1].depth, 200u);
  EXPECT_TRUE(r.contents[1].nocase);
  EXPECT_TRUE(r.contents[2].regex);
  EXPECT_EQ(r.contents[3].pattern, "\r\n");
  EXPECT_EQ(r.action.kind, ActionKind::kRateLimit);
  EXPECT_EQ(r.action.rate, 100);
  EXPECT_EQ(r.action.over_limit, (VerdictSpec{PlainVerdict::kQueue, 4}));
  EXPECT_TRUE(r.log);
  EXPECT_EQ(s.rules[1].action.after_packets, 10u);
  EXPECT_EQ(s.rules[1].action.via, BypassVia::kMark);
  EXPECT_EQ(s.rules[1].action.mark, (MaskedValue{1, 1}));
  ASSERT_EQ(s.sets.size(), 1u);
  EXPECT_EQ(FormatCidr(s.sets[0].prefixes.at(0)), "2001:db8::/32");
}

TEST(RuleSection, reports_every_error_with_position_rule_name_and_suggestion) {
  std::vector<Diagnostic> d;
  ParseSection(R"(
[[rules]]
name = "one"
src = ["10.0.0.1/8", "300.1.1.1"]
dst_ports = ["2000-1000", 70000]
tcp_flags = "SYN/ACK"
actoin = "drop"

[[rules]]
name = "two"
action = "queue"
rate = 3
src = ["@nosuch"]

[[rules]]
name = "one"
action = "explode"
)", d);
  std::vector<std::string> lines;
  for (const auto& diagnostic : d) lines.push_back(rules::FormatDiagnostic(diagnostic));
  const std::vector<std::string> expected = {
      "test.toml:2:1: rules[0]: missing 'action' (accept, drop, repeat, queue, mark, rate_limit, bypass)",
      "test.toml:4:8: rules[0] (one).src: '10.0.0.1/8' has bits set past the prefix length (did you mean "
      "'10.0.0.0/8'?)",
      "test.toml:4:22: rules[0] (one).src: expected an IPv4 or IPv6 address or prefix (a.b.c.d/len, "
      "x:y::/len), found '300.1.1.1'",
      "test.toml:5:14: rules[0] (one).dst_ports: contradictory range \"2000-1000\": low end above high end",
      "test.toml:5:27: rules[0] (one).dst_ports: expected an integer 0-65535 or a range \"low-high\", found "
      "70000",
      "test.toml:6:13: rules[0] (one).tcp_flags: contradictory flags \"SYN/ACK\": a set flag is not in the mask",
      "test.toml:7:10: rules[0] (one).actoin: unknown key 'actoin' (did you mean 'action'?)",
      "test.toml:9:1: rules[1] (two).queue: action \"queue\" needs 'queue = N'",
      "test.toml:9:1: rules (two): unknown set '@nosuch' (define it as [sets.nosuch])",
      "test.toml:12:8: rules[1] (two).rate: 'rate' does not apply to this rule's action",
      "test.toml:15:1: rules (one).name: duplicate rule name 'one' (first at test.toml:2)",
      "test.toml:17:10: rules[2] (one).action: expected accept, drop, repeat, queue, mark, rate_limit or "
      "bypass, found \"explode\"",
  };
  EXPECT_EQ(lines, expected);
}

TEST(RuleSection, reads_rule_files_after_the_inline_rules) {
  std::string dir = ::testing::TempDir();
  if (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string path = dir + "/rules_included.toml";
  {
    std::ofstream out(path);
    out << "[[rules]]\nname = \"from-file\"\naction = \"drop\"\n\n[[rules]]\nname = \"broken\"\n"
           "action = \"drop\"\ndst_ports = \"x\"\n\n[sets.fileset]\nprefixes = [\"10.0.0.0/8\"]\n";
  }
  std::vector<Diagnostic> d;
  RulesSection s = ParseSection("rule_files = [\"rules_included.toml\"]\n[[rules]]\nname = \"inline\"\n"
                                "src = [\"@fileset\"]\naction = \"accept\"\n",
                                d, dir + "/main.toml");
  ASSERT_EQ(d.size(), 1u) << Joined(d);
  EXPECT_EQ(d[0].file, path);
  EXPECT_EQ(d[0].line, 8);
  EXPECT_EQ(d[0].key, "rules[1] (broken).dst_ports");
  ASSERT_EQ(s.rules.size(), 1u);
  ASSERT_EQ(s.included_rules.size(), 2u);
  EXPECT_EQ(s.included_rules[0].name, "from-file");
  EXPECT_EQ(s.included_rules[0].position.file, path);
  EXPECT_EQ(s.include_files, std::vector<std::string>{path});
  ASSERT_EQ(s.included_sets.size(), 1u);

  std::vector<Diagnostic> missing;
  ParseSection("rule_files = [\"nosuch.toml\"]\n", missing, dir + "/main.toml");
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].line, 1);
  EXPECT_NE(missing[0].message.find("cannot read rule file"), std::string::npos);

  {
    std::ofstream out(path);
    out << "[[rules]]\nname = \"x\"\naction = = \"drop\"\n";
  }
  std::vector<Diagnostic> syntax;
  ParseSection("rule_files = [\"rules_included.toml\"]\n", syntax, dir + "/main.toml");
  ASSERT_EQ(syntax.size(), 1u);
  EXPECT_EQ(syntax[0].file, path);
  EXPECT_EQ(syntax[0].line, 3);
  std::remove(path.c_str());
}

TEST(RuleSection, printed_rules_load_back_equal) {
  std::vector<Diagnostic> d;
  RulesSection s = ParseSection(R"(
[rule_engine]
fragments = "accept"
flow_table_size = 1024
log_file = "/tmp/x.json"
log_rate = 50
[[rules]]
name = "a"
family = "ipv6"
src = ["2001:db8::/32", "@s"]
protocol = "tcp"
dst_ports = [80, "8000-8080"]
tcp_flags = "SYN/SYN,ACK,RST"
mark = 5
ct_state = "reply"
uid = 0
length = "60-1500"
content = [{ hex = "00ff" }, { literal = "x", nocase = true, offset = 3, depth = 9 }, { regex = "^a.*b" }]
action = "mark"
set_mark = "0x1/0x1"
then = "repeat"
log = true
[[rules]]
name = "b"
action = "bypass"
bypass_after_bytes = 100000
bypass_mark = "0x2/0x2"
[[rules]]
name = "c"
in_interface = "lo"
action = "rate_limit"
rate = 2.5
[sets.s]
prefixes = ["10.0.0.0/8", "::1/128"]
)", d);
  ASSERT_TRUE(d.empty()) << Joined(d);
  toml::table printed;
  PrintRulesSection(s, printed);
  std::stringstream text;
  text << printed;
  std::vector<Diagnostic> d2;
  RulesSection again = ParseSection(text.str(), d2);
  ASSERT_TRUE(d2.empty()) << Joined(d2) << text.str();
  EXPECT_EQ(again, s) << text.str();
  EXPECT_EQ(again.rules[2].action.burst, 2.5);
}

TEST(RuleSection, empty_configuration_has_no_rules_and_default_settings) {
  std::vector<Diagnostic> d;
  RulesSection s = ParseSection("", d);
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(s, RulesSection{});
}

}  // namespace
}  // namespace verdictd::config
