#include "verdictd/extensions/commands.h"

#include <cstdlib>
#include <vector>

namespace verdictd::extensions {
namespace {

std::vector<std::string> Words(std::string_view text, std::size_t max_words) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size()) break;
    if (words.size() + 1 == max_words) {  // the rest is one word (parameters)
      words.emplace_back(text.substr(i));
      break;
    }
    const std::size_t end = text.find(' ', i);
    words.emplace_back(text.substr(i, end == std::string_view::npos ? end : end - i));
    i = end == std::string_view::npos ? text.size() : end;
  }
  return words;
}

std::string Reply(const CommandResult& result) {
  std::string text = result.ok ? "ok " : "error: ";
  text += result.text;
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

constexpr const char* kUsage =
    "error: usage: ext list | add NAME [PARAMS] | del NAME | group NAME MASK | start NAME | "
    "stop NAME | reset NAME | info NAME | help NAME\n";

}  // namespace

std::string RunExtCommand(ExtensionHost& host, std::string_view request,
                          const std::function<std::string()>& rebuild) {
  const std::vector<std::string> w = Words(request, 3);
  if (w.empty()) return kUsage;
  const std::string& verb = w[0];
  if (verb == "list" && w.size() == 1) return Reply(host.List());
  if (w.size() < 2) return kUsage;
  const std::string& name = w[1];
  if (verb == "add") {
    CommandResult result = host.Add(name, w.size() > 2 ? w[2] : "");
    if (!result.ok) return Reply(result);
    if (std::string problem = rebuild(); !problem.empty()) {
      host.Del(name);
      return "error: " + name + " loaded but the chain could not be rebuilt: " + problem + "\n";
    }
    return Reply(result);
  }
  if (verb == "del" && w.size() == 2) {
    CommandResult result = host.Del(name);
    if (!result.ok) return Reply(result);
    if (std::string problem = rebuild(); !problem.empty()) {
      return "error: the chain could not be rebuilt: " + problem + "\n";
    }
    return Reply(result);
  }
  if (verb == "group" && w.size() == 3) {
    char* end = nullptr;
    const unsigned long long mask = std::strtoull(w[2].c_str(), &end, 0);
    if (end == w[2].c_str() || *end != '\0' || mask > 0xffffffffull) {
      return "error: expected a mask from 0 to 0xffffffff (decimal or 0x...), found \"" + w[2] +
             "\"\n";
    }
    return Reply(host.Group(name, static_cast<std::uint32_t>(mask)));
  }
  if (w.size() != 2) return kUsage;
  if (verb == "start") return Reply(host.Start(name));
  if (verb == "stop") return Reply(host.Stop(name));
  if (verb == "reset") return Reply(host.Reset(name));
  if (verb == "info") return Reply(host.Info(name));
  if (verb == "help") return Reply(host.Help(name));
  return kUsage;
}

}  // namespace verdictd::extensions
