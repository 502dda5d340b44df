// One control-socket command line as data: what the daemon is asked to do,
// recognised and checked before anything runs. The control server parses
// each line once (MakeControlHandler) and runs only what parsed; the fuzz
// target `control` feeds this parser arbitrary bytes.
//
// The line is what ControlServer hands its handler: trimmed, at most 256
// bytes, printable. The parser itself assumes none of that.
//
// Pure functions: no I/O, no global state; they allocate only the returned
// strings. Never throw except std::bad_alloc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "verdictd/extensions/ext_command.h"

namespace verdictd::service {

enum class ControlVerb : std::uint8_t { kReload, kStatus, kConfig, kTop, kUpgrade, kExt };

struct ControlCommand {
  ControlVerb verb = ControlVerb::kStatus;
  std::string binary;           // upgrade: the new binary; "" = the running one's path
  extensions::ExtCommand ext;   // ext: the sub-command

  bool operator==(const ControlCommand&) const = default;
};

struct ControlParse {
  ControlCommand command;
  // Set once the first word named a command, even when its arguments are
  // wrong (so a daemon without an extension host can say so for any "ext").
  bool recognised = false;
  // Empty when `command` holds the request, else the reply's reason
  // (without "error: "), never empty.
  std::string error;
  bool ok() const { return error.empty(); }
};

// "reload", "status", "config", "top": no arguments. "upgrade [PATH]": the
// rest of the line is the binary's path. "ext ...": see
// extensions/ext_command.h. Anything else: unknown command, naming (the
// first 40 bytes of) the line and the commands there are.
ControlParse ParseControlCommand(std::string_view line);

// The refusal of a line that names no command (also given for top and
// upgrade by a handler without the daemon's part).
std::string UnknownCommand(std::string_view line);

// The line that ParseControlCommand() parses back to `command`.
std::string FormatControlCommand(const ControlCommand& command);

}  // namespace verdictd::service
