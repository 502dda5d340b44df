// The control-socket command parser: one line, as a client sends it, to
// ParseControlCommand() (the `ext` sub-commands included). Invariants:
//  - every line gives a command or a refusal; a refusal has a reason (the
//    result type makes "ok" and "no reason" the same thing), and a line that
//    names no command is refused;
//  - the reason of a printable line is printable: the reply stays one line;
//  - a command prints (FormatControlCommand) to a line that parses to the
//    same command.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_target.h"
#include "verdictd/service/control_command.h"

namespace {

bool Printable(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using verdictd::service::ControlParse;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const ControlParse parse = verdictd::service::ParseControlCommand(line);
  if (!parse.ok()) {
    if (Printable(line) && !Printable(parse.error)) std::abort();
    return 0;
  }
  if (!parse.recognised) std::abort();  // accepted a line that names no command
  const std::string printed = verdictd::service::FormatControlCommand(parse.command);
  const ControlParse again = verdictd::service::ParseControlCommand(printed);
  if (!again.ok() || !(again.command == parse.command)) std::abort();
  return 0;
}
