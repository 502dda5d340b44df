// `verdictd ctl ext ...`: runs one control request on the host. Control
// thread; returns the reply ("ok ...\n" or "error: ...\n").
// `rebuild` applies add/del (a new policy with a new chain, as a reload);
// it returns "" on success or the reason it failed.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "verdictd/extensions/ext_command.h"
#include "verdictd/extensions/host.h"

namespace verdictd::extensions {

// A request already parsed (ParseExtCommand).
std::string RunExtCommand(ExtensionHost& host, const ExtCommand& command,
                          const std::function<std::string()>& rebuild);
// The words after "ext ": parses them, then runs them; a malformed request
// gets "error: <why>\n".
std::string RunExtCommand(ExtensionHost& host, std::string_view request,
                          const std::function<std::string()>& rebuild);

}  // namespace verdictd::extensions
