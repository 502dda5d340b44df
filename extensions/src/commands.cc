#include "verdictd/extensions/commands.h"

namespace verdictd::extensions {
namespace {

std::string Reply(const CommandResult& result) {
  std::string text = result.ok ? "ok " : "error: ";
  text += result.text;
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

}  // namespace

std::string RunExtCommand(ExtensionHost& host, const ExtCommand& command,
                          const std::function<std::string()>& rebuild) {
  const std::string& name = command.name;
  switch (command.verb) {
    case ExtVerb::kList:
      return Reply(host.List());
    case ExtVerb::kAdd: {
      CommandResult result = host.Add(name, command.parameters);
      if (!result.ok) return Reply(result);
      if (std::string problem = rebuild(); !problem.empty()) {
        host.Del(name);
        return "error: " + name + " loaded but the chain could not be rebuilt: " + problem + "\n";
      }
      return Reply(result);
    }
    case ExtVerb::kDel: {
      CommandResult result = host.Del(name);
      if (!result.ok) return Reply(result);
      if (std::string problem = rebuild(); !problem.empty()) {
        return "error: the chain could not be rebuilt: " + problem + "\n";
      }
      return Reply(result);
    }
    case ExtVerb::kGroup:
      return Reply(host.Group(name, command.mask));
    case ExtVerb::kStart:
      return Reply(host.Start(name));
    case ExtVerb::kStop:
      return Reply(host.Stop(name));
    case ExtVerb::kReset:
      return Reply(host.Reset(name));
    case ExtVerb::kInfo:
      return Reply(host.Info(name));
    case ExtVerb::kHelp:
      return Reply(host.Help(name));
  }
  return "error: " + std::string(kExtUsage) + "\n";
}

std::string RunExtCommand(ExtensionHost& host, std::string_view request,
                          const std::function<std::string()>& rebuild) {
  const ExtParse parse = ParseExtCommand(request);
  if (!parse.ok()) return "error: " + parse.error + "\n";
  return RunExtCommand(host, parse.command, rebuild);
}

}  // namespace verdictd::extensions
