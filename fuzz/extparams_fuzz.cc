// The extension parameter path: hostile parameter strings through both ways
// they reach an extension, into the real loader and the example
// extensions' load() (their parameter parsers).
//  - [[extensions]] parameters = "..." in the configuration: the loader
//    must refuse what the host would refuse, naming the key, and deliver
//    exactly what was written otherwise;
//  - `ctl ext add NAME PARAMS` (ExtensionHost::Add): the host checks the
//    string, loads the extension from its directory with the same checks as
//    the service (LoadedExtension::Load) and calls its load(). A refusal
//    must name the extension and its parameters.
// Input: the first byte picks the example extension, the rest is the
// parameter string. The examples (built .so files) are copied into a
// private directory, as the host requires (owned by us, not writable by
// others), once per process.
#include <dlfcn.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_target.h"
#include "verdictd/config/loader.h"
#include "verdictd/config/values.h"
#include "verdictd/extensions/host.h"

namespace {

constexpr std::array<const char*, 4> kExtensions = {"template", "flowcount", "rewrite",
                                                    "slowlookup"};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "extparams: %s\n", what.c_str());
  std::abort();
}

std::filesystem::path g_directory;
void RemoveDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(g_directory, ignored);
}

// The host, over a private copy of the example extensions.
verdictd::extensions::ExtensionHost& Host() {
  static std::unique_ptr<verdictd::extensions::ExtensionHost> host = [] {
    spdlog::set_level(spdlog::level::off);  // a line per load would dominate
    char pattern[] = "/tmp/verdictd-extparams-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) Die("cannot create a directory in /tmp");
    g_directory = pattern;
    std::atexit(RemoveDirectory);
    for (const char* name : kExtensions) {
      const std::filesystem::path from =
          std::filesystem::path(VERDICTD_EXTENSION_BUILD_DIR) / (std::string(name) + ".so");
      const std::filesystem::path to = g_directory / from.filename();
      std::error_code error;
      std::filesystem::copy_file(from, to, error);
      if (error) Die("cannot copy " + from.string() + ": " + error.message());
      std::filesystem::permissions(to, std::filesystem::perms(0644), error);
      // Held open for the whole run: each load then finds the object mapped
      // instead of mapping (and instrumenting) it again.
      if (::dlopen(to.c_str(), RTLD_NOW | RTLD_LOCAL) == nullptr) Die(::dlerror());
    }
    verdictd::config::ExtensionsSection settings;
    settings.directory = g_directory.string();
    return std::make_unique<verdictd::extensions::ExtensionHost>(
        settings, verdictd::extensions::HostOptions{1, static_cast<unsigned>(::geteuid())});
  }();
  return *host;
}

// A TOML basic string holding `text` exactly (bytes >= 0x80 go as they are;
// invalid UTF-8 is the parser's to refuse).
std::string TomlString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04X", byte);
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool Ascii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

void ThroughTheConfiguration(const std::string& name, const std::string& parameters) {
  const std::string text = "[[extensions]]\nname = \"" + name + "\"\nparameters = " +
                           TomlString(parameters) + "\n";
  const verdictd::config::LoadResult loaded =
      verdictd::config::LoadConfigString(text, "fuzz.toml");
  const bool acceptable = verdictd::config::ParametersProblem(parameters).empty();
  if (loaded.ok()) {
    if (!acceptable) Die("the configuration accepted parameters the host refuses");
    if (loaded.config.extensions.chain.size() != 1 ||
        loaded.config.extensions.chain[0].parameters != parameters) {
      Die("the configuration delivered other parameters than were written");
    }
    return;
  }
  const std::string report = verdictd::config::FormatDiagnostics(loaded.diagnostics);
  if (report.empty()) Die("a refused configuration without a reason");
  // Valid UTF-8 (ASCII here) leaves the parameters as the only thing to refuse.
  if (Ascii(parameters)) {
    if (acceptable) Die("refused acceptable parameters: " + report);
    if (report.find("extensions[0].parameters") == std::string::npos) {
      Die("the refusal does not name the key: " + report);
    }
  }
}

void ThroughTheHost(const std::string& name, const std::string& parameters) {
  const verdictd::extensions::CommandResult result = Host().Add(name, parameters);
  if (result.ok) return;
  if (result.text.find(name) == std::string::npos ||
      result.text.find("parameter") == std::string::npos) {
    // "parameters: ..." from the host's own check, "parameter \"key\": ..."
    // from an extension's parameter table.
    Die("the refusal does not name the extension and its parameters: " + result.text);
  }
}

}  // namespace

// libFuzzer calls this before it counts the loaded modules: the examples are
// mapped by then, so their coverage counts too. (The replay program loads
// them at the first input instead.)
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Host();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string name = kExtensions[data[0] % kExtensions.size()];
  const std::string parameters(reinterpret_cast<const char*>(data + 1), size - 1);
  ThroughTheConfiguration(name, parameters);
  ThroughTheHost(name, parameters);
  return 0;
}
