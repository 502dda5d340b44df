// `verdictd ctl ext ...` as data: the words after "ext" on a control line,
// recognised and checked without touching the host. The control server
// parses a line once (service/control_command.h), then runs the command
// (commands.h); the fuzz target `control` feeds this parser arbitrary text.
//
// Pure functions: no I/O, no global state; they allocate only the returned
// strings. Never throw except std::bad_alloc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace verdictd::extensions {

enum class ExtVerb : std::uint8_t { kList, kAdd, kDel, kGroup, kStart, kStop, kReset, kInfo, kHelp };

struct ExtCommand {
  ExtVerb verb = ExtVerb::kList;
  std::string name;        // every verb but list
  std::string parameters;  // add: the rest of the line, passed to the extension's load()
  std::uint32_t mask = 0;  // group

  bool operator==(const ExtCommand&) const = default;
};

// The outcome of parsing: `error` is empty when `command` holds the request,
// else the reply's reason (without "error: "), never empty.
struct ExtParse {
  ExtCommand command;
  std::string error;
  bool ok() const { return error.empty(); }
};

// `words`: what follows "ext " (may be empty). Words are separated by
// spaces; for add, everything after the name is the parameter string (it may
// contain spaces). add checks the name and the parameters as the
// configuration does ([[extensions]] name, parameters); group takes a mask
// from 0 to 0xffffffff, decimal or 0x-prefixed hex.
ExtParse ParseExtCommand(std::string_view words);

// The words that ParseExtCommand() parses back to `command` ("add NAME
// PARAMS", "group NAME 0x...", ...).
std::string FormatExtCommand(const ExtCommand& command);

// The usage line, as refusals of a malformed request give it.
inline constexpr std::string_view kExtUsage =
    "usage: ext list | add NAME [PARAMS] | del NAME | group NAME MASK | start NAME | "
    "stop NAME | reset NAME | info NAME | help NAME";

}  // namespace verdictd::extensions
