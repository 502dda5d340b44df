#include "verdictd/service/control_cli.h"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/config/loader.h"
#include "verdictd/service/control.h"
#include "verdictd/service/queue_status.h"

namespace verdictd::service {
namespace {

// `verdictd ctl top`: samples the daemon's per-queue counters every
// `interval` seconds and prints the table; on a terminal each frame replaces
// the last (ANSI clear + home). `frames` 0: until interrupted. The first
// frame comes after one interval, so that it can show rates.
int RunTop(const std::string& path, double interval, int frames) {
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  auto sample = [&path](std::vector<QueueSample>& out) {
    std::ostringstream reply;
    if (SendControlCommand(path, "top", reply, std::cerr) != 0) {
      std::cerr << reply.str();
      return false;
    }
    out = ParseQueueSamples(reply.str());
    return true;
  };
  std::vector<QueueSample> before;
  if (!sample(before)) return 1;
  auto last = std::chrono::steady_clock::now();
  for (int frame = 0; frames == 0 || frame < frames; ++frame) {
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    std::vector<QueueSample> now;
    if (!sample(now)) return 1;
    const auto at = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(at - last).count();
    if (tty) std::cout << "\x1b[H\x1b[2J";
    std::cout << "verdictd top: " << now.size() << " queue(s), interval " << interval << " s\n"
              << RenderTop(before, now, seconds);
    if (!tty) std::cout << "\n";
    std::cout.flush();
    before = std::move(now);
    last = at;
  }
  return 0;
}

}  // namespace

Subcommand AddCtlCommand(CLI::App& app) {
  struct CtlOptions {
    std::string socket;
    std::string config_file;
    std::string command;
    double interval = 1.0;
    bool once = false;
    int count = 0;
    std::vector<std::string> args;
    std::string binary;
  };
  auto options = std::make_shared<CtlOptions>();
  CLI::App* ctl = app.add_subcommand("ctl", "Talk to a running verdictd over its control socket");
  ctl->add_option("command", options->command,
                  "reload | status | config | top (a live per-queue view) | ext | upgrade "
                  "(hand the bound queues to a new process, without loss)")
      ->required()
      ->check(CLI::IsMember({"reload", "status", "config", "top", "ext", "upgrade"}));
  ctl->add_option("--binary", options->binary,
                  "upgrade: the new verdictd binary (default: the running one's path)");
  ctl->add_option("args", options->args,
                  "ext: list | add NAME [PARAMS] | del NAME | group NAME MASK | start NAME | "
                  "stop NAME | reset NAME | info NAME | help NAME");
  ctl->add_option("-i,--interval", options->interval, "top: seconds between refreshes")
      ->check(CLI::Range(0.05, 3600.0));
  auto* once = ctl->add_flag("--once", options->once, "top: print one frame and exit");
  ctl->add_option("-n,--count", options->count, "top: print N frames and exit (0: until ^C)")
      ->check(CLI::NonNegativeNumber)
      ->excludes(once);
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
    if (options->command == "top") {
      return RunTop(path, options->interval, options->once ? 1 : options->count);
    }
    std::string command = options->command;
    for (const std::string& arg : options->args) command += " " + arg;
    if (options->command == "upgrade" && !options->binary.empty()) {
      command += " " + options->binary;
    }
    return SendControlCommand(path, command, std::cout, std::cerr);
  };
  return subcommand;
}

}  // namespace verdictd::service
