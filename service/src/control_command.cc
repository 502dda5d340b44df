#include "verdictd/service/control_command.h"

namespace verdictd::service {
namespace {

struct Word {
  std::string_view text;
  ControlVerb verb;
};
// The commands without arguments.
constexpr Word kPlain[] = {{"reload", ControlVerb::kReload},
                           {"status", ControlVerb::kStatus},
                           {"config", ControlVerb::kConfig},
                           {"top", ControlVerb::kTop}};

constexpr std::string_view kUpgrade = "upgrade";
constexpr std::string_view kExt = "ext";

// True when `line` is `verb` alone or `verb` and a space; `rest` is then
// what follows that space.
bool Rest(std::string_view line, std::string_view verb, std::string_view& rest) {
  if (line == verb) {
    rest = {};
    return true;
  }
  if (line.size() > verb.size() && line.starts_with(verb) && line[verb.size()] == ' ') {
    rest = line.substr(verb.size() + 1);
    return true;
  }
  return false;
}

}  // namespace

ControlParse ParseControlCommand(std::string_view line) {
  ControlParse parse;
  for (const Word& word : kPlain) {
    if (line != word.text) continue;
    parse.command.verb = word.verb;
    parse.recognised = true;
    return parse;
  }
  std::string_view rest;
  if (Rest(line, kExt, rest)) {
    parse.command.verb = ControlVerb::kExt;
    parse.recognised = true;
    extensions::ExtParse ext = extensions::ParseExtCommand(rest);
    if (!ext.ok()) {
      parse.error = std::move(ext.error);
    } else {
      parse.command.ext = std::move(ext.command);
    }
    return parse;
  }
  if (Rest(line, kUpgrade, rest)) {
    parse.command.verb = ControlVerb::kUpgrade;
    parse.recognised = true;
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    parse.command.binary = std::string(rest);
    return parse;
  }
  parse.error = UnknownCommand(line);
  return parse;
}

std::string UnknownCommand(std::string_view line) {
  return "unknown command \"" + std::string(line.substr(0, 40)) +
         "\"; commands: reload, status, config, ext";
}

std::string FormatControlCommand(const ControlCommand& command) {
  switch (command.verb) {
    case ControlVerb::kExt:
      return std::string(kExt) + " " + extensions::FormatExtCommand(command.ext);
    case ControlVerb::kUpgrade:
      return command.binary.empty() ? std::string(kUpgrade)
                                    : std::string(kUpgrade) + " " + command.binary;
    default:
      break;
  }
  for (const Word& word : kPlain) {
    if (word.verb == command.verb) return std::string(word.text);
  }
  return "status";
}

}  // namespace verdictd::service
