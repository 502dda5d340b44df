#include "verdictd/service/control_command.h"

#include <gtest/gtest.h>

#include <string>

namespace verdictd::service {
namespace {

using extensions::ExtVerb;

ControlCommand Parsed(std::string_view line) {
  const ControlParse parse = ParseControlCommand(line);
  EXPECT_TRUE(parse.ok()) << line << ": " << parse.error;
  EXPECT_TRUE(parse.recognised) << line;
  EXPECT_EQ(ParseControlCommand(FormatControlCommand(parse.command)).command, parse.command)
      << line << " printed as " << FormatControlCommand(parse.command);
  return parse.command;
}

std::string Refusal(std::string_view line) {
  const ControlParse parse = ParseControlCommand(line);
  EXPECT_FALSE(parse.ok()) << line;
  return parse.error;
}

TEST(ControlCommand, parses_the_commands_without_arguments) {
  EXPECT_EQ(Parsed("reload").verb, ControlVerb::kReload);
  EXPECT_EQ(Parsed("status").verb, ControlVerb::kStatus);
  EXPECT_EQ(Parsed("config").verb, ControlVerb::kConfig);
  EXPECT_EQ(Parsed("top").verb, ControlVerb::kTop);
}

TEST(ControlCommand, upgrade_takes_the_rest_of_the_line_as_the_binary) {
  EXPECT_EQ(Parsed("upgrade").binary, "");
  const ControlCommand upgrade = Parsed("upgrade /usr/sbin/verdictd.new");
  EXPECT_EQ(upgrade.verb, ControlVerb::kUpgrade);
  EXPECT_EQ(upgrade.binary, "/usr/sbin/verdictd.new");
  EXPECT_EQ(Parsed("upgrade  /opt/a b").binary, "/opt/a b");
}

TEST(ControlCommand, parses_every_ext_sub_command) {
  EXPECT_EQ(Parsed("ext list").ext.verb, ExtVerb::kList);
  const ControlCommand add = Parsed("ext add rewrite GET=PUT,a=b c");
  EXPECT_EQ(add.verb, ControlVerb::kExt);
  EXPECT_EQ(add.ext.verb, ExtVerb::kAdd);
  EXPECT_EQ(add.ext.name, "rewrite");
  EXPECT_EQ(add.ext.parameters, "GET=PUT,a=b c");
  EXPECT_EQ(Parsed("ext add template").ext.parameters, "");
  EXPECT_EQ(Parsed("ext group flowcount 0x10").ext.mask, 16u);
  EXPECT_EQ(Parsed("ext group flowcount 4294967295").ext.mask, 0xffffffffu);
  for (const auto& [word, verb] :
       {std::pair{"del", ExtVerb::kDel}, std::pair{"start", ExtVerb::kStart},
        std::pair{"stop", ExtVerb::kStop}, std::pair{"reset", ExtVerb::kReset},
        std::pair{"info", ExtVerb::kInfo}, std::pair{"help", ExtVerb::kHelp}}) {
    const ControlCommand command = Parsed(std::string("ext ") + word + " dnsguard");
    EXPECT_EQ(command.ext.verb, verb) << word;
    EXPECT_EQ(command.ext.name, "dnsguard") << word;
  }
}

TEST(ControlCommand, refuses_unknown_commands_naming_them) {
  EXPECT_EQ(Refusal("frobnicate"),
            "unknown command \"frobnicate\"; commands: reload, status, config, ext");
  EXPECT_EQ(Refusal(""), "unknown command \"\"; commands: reload, status, config, ext");
  EXPECT_EQ(Refusal(std::string(200, 'A')),
            "unknown command \"" + std::string(40, 'A') + "\"; commands: reload, status, "
            "config, ext");
  EXPECT_NE(Refusal("reload now please").find("unknown command \"reload now please\""),
            std::string::npos);
  EXPECT_FALSE(ParseControlCommand("extra").recognised);
  EXPECT_FALSE(ParseControlCommand("upgrader").recognised);
}

TEST(ControlCommand, refuses_malformed_ext_requests_saying_why) {
  const std::string usage(extensions::kExtUsage);
  EXPECT_EQ(Refusal("ext"), usage);
  EXPECT_EQ(Refusal("ext list all"), usage);
  EXPECT_EQ(Refusal("ext del"), usage);
  EXPECT_EQ(Refusal("ext del a b"), usage);
  EXPECT_EQ(Refusal("ext group a"), usage);
  EXPECT_EQ(Refusal("ext frob a"), usage);
  EXPECT_TRUE(ParseControlCommand("ext frob").recognised);  // "ext" was named
  EXPECT_EQ(Refusal("ext group a 0x100000000"),
            "expected a mask from 0 to 0xffffffff (decimal or 0x...), found \"0x100000000\"");
  EXPECT_EQ(Refusal("ext group a 12 3"),
            "expected a mask from 0 to 0xffffffff (decimal or 0x...), found \"12 3\"");
  EXPECT_EQ(Refusal(std::string("ext group a 5\0x", 15)),
            std::string("expected a mask from 0 to 0xffffffff (decimal or 0x...), found \"5\0x\"",
                        68));
  EXPECT_NE(Refusal("ext add -x").find("expected an extension name"), std::string::npos);
  EXPECT_EQ(Refusal("ext add rewrite a=\x01"),
            "extension rewrite: parameters: expected a parameter string without control "
            "characters");
}

}  // namespace
}  // namespace verdictd::service
