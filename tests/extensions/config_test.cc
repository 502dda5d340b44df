// [extension_host] and [[extensions]] in the configuration file.
#include <gtest/gtest.h>

#include "verdictd/config/changes.h"
#include "verdictd/config/loader.h"
#include "verdictd/config/values.h"
#include "verdictd/extensions/ext_command.h"

namespace verdictd::config {
namespace {

TEST(ExtensionConfig, reads_the_host_section_and_the_chain_in_order) {
  const LoadResult r = LoadConfigString(R"(
[extension_host]
directory = "/opt/ext"
arena_concurrency = 4
pending_slots = 128
pending_timeout_ms = 250
timeout_verdict = "drop"
overflow_verdict = "queue:3"
end_verdict = "accept"

[[extensions]]
name = "flowcount"
parameters = "max_flows=64"

[[extensions]]
name = "rewrite"
file = "rewrite-v2.so"
parameters = "hello=HOWDY"
group = 2
started = false
)", "test.toml", LoadOptions{2, {}});
  ASSERT_TRUE(r.ok()) << FormatDiagnostics(r.diagnostics);
  const ExtensionsSection& e = r.config.extensions;
  EXPECT_EQ(e.directory, "/opt/ext");
  EXPECT_EQ(e.arena_concurrency, 4u);
  EXPECT_EQ(e.pending_slots, 128u);
  EXPECT_EQ(e.pending_timeout_ms, 250u);
  EXPECT_EQ(e.timeout_verdict.kind, VerdictKind::kDrop);
  EXPECT_EQ(e.overflow_verdict.kind, VerdictKind::kQueue);
  EXPECT_EQ(e.overflow_verdict.target_queue, 3);
  ASSERT_EQ(e.chain.size(), 2u);
  EXPECT_EQ(e.chain[0].name, "flowcount");
  EXPECT_EQ(e.chain[0].parameters, "max_flows=64");
  EXPECT_TRUE(e.chain[0].started);
  EXPECT_EQ(e.chain[1].file, "rewrite-v2.so");
  EXPECT_EQ(e.chain[1].group, 2u);
  EXPECT_FALSE(e.chain[1].started);
}

TEST(ExtensionConfig, reports_bad_keys_and_values_with_file_and_line) {
  const LoadResult r = LoadConfigString(R"([extension_host]
directry = "/x"
pending_slots = 0

[[extensions]]
name = "a/b"
file = "../evil.so"
grup = 1

[[extensions]]
parameters = "x"
)", "ext.toml", LoadOptions{2, {}});
  ASSERT_FALSE(r.ok());
  const std::string text = FormatDiagnostics(r.diagnostics);
  EXPECT_NE(text.find("ext.toml:2:1: extension_host.directry: unknown key; did you mean \"directory\"?"),
            std::string::npos) << text;
  EXPECT_NE(text.find("ext.toml:3:17: extension_host.pending_slots: expected an integer from 1 to 65535"),
            std::string::npos) << text;
  EXPECT_NE(text.find("ext.toml:6:8: extensions[0].name: expected an extension name"), std::string::npos) << text;
  EXPECT_NE(text.find("ext.toml:7:8: extensions[0].file: expected a file name inside"), std::string::npos) << text;
  EXPECT_NE(text.find("extensions[0].grup: unknown key; did you mean \"group\"?"), std::string::npos) << text;
  EXPECT_NE(text.find("extensions[1].name: expected an extension name"), std::string::npos) << text;
}

TEST(ExtensionConfig, refuses_a_name_used_twice) {
  const LoadResult r = LoadConfigString("[[extensions]]\nname = \"a\"\n[[extensions]]\nname = \"a\"\n",
                                        "dup.toml", LoadOptions{2, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(FormatDiagnostics(r.diagnostics).find("dup.toml:4:8: extensions[1].name: expected a name not used"),
            std::string::npos) << FormatDiagnostics(r.diagnostics);
}

TEST(ExtensionConfig, chain_changes_are_live_and_table_sizes_need_a_restart) {
  Config a;
  Config b = a;
  b.extensions.chain.push_back({"template", "", "", 0, true});
  b.extensions.end_verdict.kind = VerdictKind::kDrop;
  EXPECT_TRUE(RestartOnlyChanges(a, b, QueueChanges::kLive).empty());
  b.extensions.pending_slots = 7;
  EXPECT_EQ(RestartOnlyChanges(a, b, QueueChanges::kLive),
            std::vector<std::string>{"extension_host.pending_slots"});
}

// One number syntax for rule values, extension parameters and group masks:
// decimal or 0x hex, never octal (the parameter check and `ctl ext group`
// once read "010" as 8 and refused "08").
TEST(NumberSyntax, is_decimal_or_0x_hex_and_the_whole_text) {
  std::uint64_t v = 0;
  EXPECT_TRUE(ParseUnsigned("010", v));
  EXPECT_EQ(v, 10u);
  EXPECT_TRUE(ParseUnsigned("08", v));
  EXPECT_EQ(v, 8u);
  EXPECT_TRUE(ParseUnsigned("0x10", v));
  EXPECT_EQ(v, 16u);
  EXPECT_TRUE(ParseUnsigned("0XfF", v));
  EXPECT_EQ(v, 255u);
  EXPECT_TRUE(ParseUnsigned("18446744073709551615", v));
  EXPECT_EQ(v, 18446744073709551615u);
  for (const char* bad : {"", "0x", "-1", "+1", " 1", "1 ", "1e3", "0b1", "12abc", "0x1g",
                          "18446744073709551616"}) {
    EXPECT_FALSE(ParseUnsigned(bad, v)) << '"' << bad << '"';
  }
}

TEST(NumberSyntax, group_masks_of_ctl_ext_take_it) {
  const extensions::ExtParse octal_looking = extensions::ParseExtCommand("group flowcount 010");
  ASSERT_TRUE(octal_looking.ok()) << octal_looking.error;
  EXPECT_EQ(octal_looking.command.mask, 10u);
  const extensions::ExtParse eight = extensions::ParseExtCommand("group flowcount 08");
  ASSERT_TRUE(eight.ok()) << eight.error;
  EXPECT_EQ(eight.command.mask, 8u);
  const extensions::ExtParse hex = extensions::ParseExtCommand("group flowcount 0xffffffff");
  ASSERT_TRUE(hex.ok()) << hex.error;
  EXPECT_EQ(hex.command.mask, 0xffffffffu);
  for (const char* bad : {"group flowcount 0x100000000", "group flowcount -1",
                          "group flowcount 1x", "group flowcount 0x"}) {
    const extensions::ExtParse parse = extensions::ParseExtCommand(bad);
    EXPECT_FALSE(parse.ok()) << bad;
    EXPECT_NE(parse.error.find("expected a mask from 0 to 0xffffffff"), std::string::npos)
        << parse.error;
  }
}

}  // namespace
}  // namespace verdictd::config
