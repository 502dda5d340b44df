// `verdictd ctl ext ...`: parses one control request and runs it on the
// host. Control thread; returns the reply ("ok ...\n" or "error: ...\n").
// `rebuild` applies add/del (a new policy with a new chain, as a reload);
// it returns "" on success or the reason it failed.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "verdictd/extensions/host.h"

namespace verdictd::extensions {

std::string RunExtCommand(ExtensionHost& host, std::string_view request,
                          const std::function<std::string()>& rebuild);

}  // namespace verdictd::extensions
