// The `verdictd ctl` client subcommand: sends one command to a running
// verdictd over its control socket (or, for `top`, samples it repeatedly).
#pragma once

#include <CLI/CLI.hpp>

#include "verdictd/service/cli.h"

namespace verdictd::service {

// `verdictd ctl [--socket PATH | --config FILE] COMMAND [ARGS]`: reload,
// status, config, top, ext ..., upgrade.
Subcommand AddCtlCommand(CLI::App& app);

}  // namespace verdictd::service
