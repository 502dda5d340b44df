#include "verdictd/extensions/loaded_extension.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_dir.h"
#include "verdictd/extensions/host.h"

namespace verdictd::extensions {
namespace {

using testing::IsRoot;
using testing::TestDir;

#define REQUIRE_ROOT() \
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories"

// The message of the LoadError that loading `name` from `dir` throws.
std::string LoadErrorOf(const TestDir& dir, const std::string& name, const std::string& params = "") {
  ExtensionHost host(config::ExtensionsSection{}, HostOptions{});
  LoadPolicy policy{dir.path(), 0};
  config::ExtensionEntry entry;
  entry.name = name;
  entry.parameters = params;
  try {
    LoadedExtension::Load(policy, entry, host.host_api(),
                          std::make_shared<ExtensionCounters>(name, 1));
  } catch (const LoadError& e) {
    return e.what();
  }
  return "";
}

TEST(Loader, loads_a_good_extension_and_reads_its_entry) {
  REQUIRE_ROOT();
  TestDir dir;
  dir.Add("template", true);
  ExtensionHost host(config::ExtensionsSection{}, HostOptions{});
  config::ExtensionEntry entry;
  entry.name = "template";
  auto loaded = LoadedExtension::Load(LoadPolicy{dir.path(), 0}, entry, host.host_api(),
                                      std::make_shared<ExtensionCounters>("template", 1));
  EXPECT_EQ(loaded->name(), "template");
  EXPECT_TRUE(loaded->started());
  EXPECT_EQ(loaded->Info(), "packets 0");
  EXPECT_EQ(loaded->path(), dir.path() + "/template.so");
}

TEST(Loader, refuses_a_wrong_abi_major_naming_the_file) {
  REQUIRE_ROOT();
  TestDir dir;
  const std::string file = dir.Add("bad_abi");
  const std::string error = LoadErrorOf(dir, "bad_abi");
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("extension ABI 2.0"), std::string::npos) << error;
  EXPECT_NE(error.find("rebuild it"), std::string::npos) << error;
}

TEST(Loader, refuses_a_missing_entry_symbol) {
  REQUIRE_ROOT();
  TestDir dir;
  const std::string file = dir.Add("no_entry");
  const std::string error = LoadErrorOf(dir, "no_entry");
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("no entry symbol \"verdictd_extension\""), std::string::npos) << error;
}

TEST(Loader, reports_a_failing_load_with_the_extensions_own_text) {
  REQUIRE_ROOT();
  TestDir dir;
  const std::string file = dir.Add("init_fails");
  const std::string error = LoadErrorOf(dir, "init_fails");
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("cannot reach the reputation database"), std::string::npos) << error;
}

TEST(Loader, reports_rejected_parameters_with_usage) {
  REQUIRE_ROOT();
  TestDir dir;
  dir.Add("rewrite", true);
  const std::string error = LoadErrorOf(dir, "rewrite", "nonsense");
  EXPECT_NE(error.find("refused to load with parameters \"nonsense\""), std::string::npos) << error;
  EXPECT_NE(error.find("expected FROM=TO"), std::string::npos) << error;
  EXPECT_NE(error.find("usage: FROM=TO"), std::string::npos) << error;
}

TEST(Loader, checks_parameters_against_the_declared_table_before_load) {
  REQUIRE_ROOT();
  TestDir dir;
  const std::string file = dir.Add("slowlookup", true);
  std::string error = LoadErrorOf(dir, "slowlookup", "delay_us=5,colour=red");
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("(slowlookup) refused: parameter \"colour\": unknown (known: delay_us, "
                      "spread, drop_port)"),
            std::string::npos)
      << error;
  error = LoadErrorOf(dir, "slowlookup", "spread=0");
  EXPECT_NE(error.find("parameter \"spread\": expected unsigned integer in 1..1000, found \"0\""),
            std::string::npos)
      << error;
  error = LoadErrorOf(dir, "slowlookup", "drop_port=80,drop_port=81");
  EXPECT_NE(error.find("parameter \"drop_port\": given twice"), std::string::npos) << error;
  error = LoadErrorOf(dir, "slowlookup", "delay_us");
  EXPECT_NE(error.find("parameter \"delay_us\": expected unsigned integer in 0..10000000, found no value"),
            std::string::npos)
      << error;
  EXPECT_EQ(LoadErrorOf(dir, "slowlookup", "delay_us=10,spread=2,drop_port=80"), "");
  // Decimal with a leading zero, not octal (docs/extensions.md: decimal or 0x).
  EXPECT_EQ(LoadErrorOf(dir, "slowlookup", "drop_port=08"), "");
  EXPECT_EQ(LoadErrorOf(dir, "slowlookup", "drop_port=0x50"), "");
  EXPECT_EQ(LoadErrorOf(dir, "slowlookup", ""), "");
}

TEST(Loader, help_prints_the_declared_parameter_table) {
  REQUIRE_ROOT();
  TestDir dir;
  dir.Add("slowlookup", true);
  const std::string text = ExtensionHelp(LoadPolicy{dir.path(), 0}, "slowlookup.so");
  EXPECT_NE(text.find("parameters:\n  delay_us=...  unsigned integer in 0..10000000, default 1000: "
                      "how long one lookup blocks\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  drop_port=...  unsigned integer in 0..65535: drop packets"), std::string::npos)
      << text;
}

TEST(Loader, refuses_a_bad_parameter_table_and_ignores_one_a_1_0_struct_cannot_hold) {
  REQUIRE_ROOT();
  TestDir dir;
  const std::string file = dir.Add("bad_params");
  dir.Add("old_size");
  const std::string error = LoadErrorOf(dir, "bad_params");
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("declares a bad parameter table: entry 0 (\"level\") has min 9 > max 1"),
            std::string::npos)
      << error;
  // api_size of 1.0: the host never reads past it, so the table is not seen.
  EXPECT_EQ(LoadErrorOf(dir, "old_size", "anything goes"), "");
}

TEST(Loader, refuses_missing_functions_and_a_short_struct) {
  REQUIRE_ROOT();
  TestDir dir;
  dir.Add("no_process");
  dir.Add("small_api");
  EXPECT_NE(LoadErrorOf(dir, "no_process").find("lacks required functions: process"), std::string::npos);
  EXPECT_NE(LoadErrorOf(dir, "small_api").find("declares api_size 16"), std::string::npos);
}

TEST(Loader, refuses_a_directory_writable_by_others) {
  REQUIRE_ROOT();
  TestDir dir;
  dir.Add("template", true);
  ::chmod(dir.path().c_str(), 0777);
  const std::string error = LoadErrorOf(dir, "template");
  EXPECT_NE(error.find("the directory " + dir.path() + " is writable by group or others (mode 0777)"),
            std::string::npos)
      << error;
}

TEST(Loader, refuses_a_directory_or_file_not_owned_by_root) {
  REQUIRE_ROOT();
  TestDir dir;
  const std::string file = dir.Add("template", true);
  ASSERT_EQ(::chown(file.c_str(), 65534, 65534), 0);
  EXPECT_NE(LoadErrorOf(dir, "template").find("the file is owned by uid 65534, not root"),
            std::string::npos);
  ASSERT_EQ(::chown(file.c_str(), 0, 0), 0);
  ASSERT_EQ(::chown(dir.path().c_str(), 65534, 65534), 0);
  EXPECT_NE(LoadErrorOf(dir, "template").find("is owned by uid 65534"), std::string::npos);
}

TEST(Loader, refuses_a_group_writable_file_and_a_symbolic_link) {
  REQUIRE_ROOT();
  TestDir dir;
  const std::string file = dir.Add("template", true);
  ::chmod(file.c_str(), 0664);
  EXPECT_NE(LoadErrorOf(dir, "template").find("the file is writable by group or others"),
            std::string::npos);
  ::chmod(file.c_str(), 0644);
  ::rename(file.c_str(), (dir.path() + "/real.so").c_str());
  ASSERT_EQ(::symlink((dir.path() + "/real.so").c_str(), file.c_str()), 0);
  EXPECT_NE(LoadErrorOf(dir, "template").find("is a symbolic link"), std::string::npos);
}

TEST(Loader, refuses_a_name_that_does_not_match_and_a_missing_file) {
  REQUIRE_ROOT();
  TestDir dir;
  const std::string file = dir.Add("template", true);
  ::rename(file.c_str(), (dir.path() + "/other.so").c_str());
  EXPECT_NE(LoadErrorOf(dir, "other").find("is the extension \"template\", not \"other\""),
            std::string::npos);
  EXPECT_NE(LoadErrorOf(dir, "absent").find("absent.so: cannot open: No such file"),
            std::string::npos);
}

TEST(Loader, help_reads_the_text_without_adding) {
  REQUIRE_ROOT();
  TestDir dir;
  dir.Add("rewrite", true);
  const std::string text = ExtensionHelp(LoadPolicy{dir.path(), 0}, "rewrite.so");
  EXPECT_NE(text.find("rewrite 1.0.0: substitutes byte strings"), std::string::npos) << text;
  EXPECT_NE(text.find("usage: parameters = \"FROM=TO"), std::string::npos) << text;
}

TEST(Loader, host_prepare_leaves_bad_extensions_out_and_keeps_the_rest) {
  REQUIRE_ROOT();
  TestDir dir;
  dir.Add("template", true);
  dir.Add("bad_abi");
  config::ExtensionsSection section;
  section.directory = dir.path();
  section.chain = {{"bad_abi", "", "", 0, true}, {"template", "", "", 0, true}};
  ExtensionHost host(section, HostOptions{});
  std::vector<std::string> errors;
  auto plan = host.Prepare(section, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(dir.path() + "/bad_abi.so"), std::string::npos);
  ASSERT_EQ(plan->links.size(), 1u);
  EXPECT_EQ(plan->links[0]->name(), "template");
}

}  // namespace
}  // namespace verdictd::extensions
