#include "verdictd/service/control_cli.h"

#include <iostream>
#include <memory>
#include <stdexcept>

#include <vector>

#include "verdictd/config/loader.h"
#include "verdictd/rules/rule_decider.h"
#include "verdictd/service/control.h"

namespace verdictd::service {

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

ConfigSource MakeConfigSource(const std::string& config_file, const ConfigFlags& flags,
                              std::function<void(config::Config&)> apply_flags) {
  ConfigSource source;
  source.file = config_file;
  source.overrides = flags.overrides;
  source.apply_flags = std::move(apply_flags);
  return source;
}

int RunConfigCommands(const ConfigFlags& flags, ConfigSource source) {
  if (flags.check_file.empty() && !flags.print) return -1;
  if (!flags.check_file.empty()) source.file = flags.check_file;
  config::LoadResult result = LoadEffectiveConfig(source);
  const std::string name = source.file.empty() ? "embedded defaults" : source.file;
  if (result.ok()) {
    // Compile the rules too: a bad regex, set file or interface is found here,
    // not at startup or reload.
    result.diagnostics = rules::CheckRules(result.config);
  }
  if (!result.ok()) {
    std::cerr << config::FormatDiagnostics(result.diagnostics) << name << ": "
              << result.diagnostics.size() << " error(s)\n";
    return 1;
  }
  if (flags.print) std::cout << config::ToToml(result.config);
  if (!flags.check_file.empty()) std::cerr << name << ": configuration is valid\n";
  return 0;
}

config::Config LoadStartupConfig(const ConfigSource& source) {
  config::LoadResult result = LoadEffectiveConfig(source);
  if (!result.ok()) {
    std::string message = "invalid configuration (" + std::to_string(result.diagnostics.size()) +
                          " error(s)); check it with --check-config:\n" +
                          config::FormatDiagnostics(result.diagnostics);
    message.pop_back();  // the last newline
    throw std::runtime_error(message);
  }
  return std::move(result.config);
}

Subcommand AddCtlCommand(CLI::App& app) {
  struct CtlOptions {
    std::string socket;
    std::string config_file;
    std::string command;
    std::vector<std::string> args;
  };
  auto options = std::make_shared<CtlOptions>();
  CLI::App* ctl = app.add_subcommand("ctl", "Talk to a running verdictd over its control socket");
  ctl->add_option("command", options->command, "reload | status | config | ext")
      ->required()
      ->check(CLI::IsMember({"reload", "status", "config", "ext"}));
  ctl->add_option("args", options->args,
                  "ext: list | add NAME [PARAMS] | del NAME | group NAME MASK | start NAME | "
                  "stop NAME | reset NAME | info NAME | help NAME");
  auto* socket = ctl->add_option("-s,--socket", options->socket,
                                 "Control socket (default: [control] socket of --config, or " +
                                     std::string(config::ControlSection::kDefaultSocket) + ")");
  ctl->add_option("-c,--config", options->config_file,
                  "Read the socket path from this configuration file")
      ->excludes(socket);
  Subcommand subcommand;
  subcommand.command = ctl;
  subcommand.run = [options]() -> int {
    std::string path = options->socket;
    if (path.empty() && !options->config_file.empty()) {
      const config::LoadResult loaded = config::LoadConfigFile(options->config_file);
      if (!loaded.ok()) {
        std::cerr << config::FormatDiagnostics(loaded.diagnostics);
        return 1;
      }
      path = loaded.config.control.socket;
    }
    if (path.empty()) path = config::ControlSection::kDefaultSocket;
    std::string command = options->command;
    for (const std::string& arg : options->args) command += " " + arg;
    return SendControlCommand(path, command, std::cout, std::cerr);
  };
  return subcommand;
}

}  // namespace verdictd::service
