#include "verdictd/extensions/ext_command.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "verdictd/config/values.h"

namespace verdictd::extensions {
namespace {

// At most `max_words` words separated by spaces; the last one takes the
// rest of the text (add's parameters may contain spaces).
std::vector<std::string> Words(std::string_view text, std::size_t max_words) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size()) break;
    if (words.size() + 1 == max_words) {
      words.emplace_back(text.substr(i));
      break;
    }
    const std::size_t end = text.find(' ', i);
    words.emplace_back(text.substr(i, end == std::string_view::npos ? end : end - i));
    i = end == std::string_view::npos ? text.size() : end;
  }
  return words;
}

ExtParse Refuse(std::string why) {
  ExtParse parse;
  parse.error = std::move(why);
  return parse;
}

ExtParse Usage() { return Refuse(std::string(kExtUsage)); }

struct NamedVerb {
  std::string_view word;
  ExtVerb verb;
};
// The verbs that take exactly one NAME.
constexpr NamedVerb kNameVerbs[] = {{"del", ExtVerb::kDel},     {"start", ExtVerb::kStart},
                                    {"stop", ExtVerb::kStop},   {"reset", ExtVerb::kReset},
                                    {"info", ExtVerb::kInfo},   {"help", ExtVerb::kHelp}};

}  // namespace

ExtParse ParseExtCommand(std::string_view text) {
  const std::vector<std::string> w = Words(text, 3);
  if (w.empty()) return Usage();
  ExtParse parse;
  ExtCommand& c = parse.command;
  const std::string& verb = w[0];
  if (verb == "list") {
    if (w.size() != 1) return Usage();
    c.verb = ExtVerb::kList;
    return parse;
  }
  if (w.size() < 2) return Usage();
  c.name = w[1];
  if (verb == "add") {
    c.verb = ExtVerb::kAdd;
    c.parameters = w.size() > 2 ? w[2] : "";
    if (std::string problem = config::ExtensionNameProblem(c.name); !problem.empty()) {
      return Refuse("expected " + problem + ", found \"" + c.name + "\"");
    }
    if (std::string problem = config::ParametersProblem(c.parameters); !problem.empty()) {
      return Refuse("extension " + c.name + ": parameters: expected " + problem);
    }
    return parse;
  }
  if (verb == "group") {
    if (w.size() != 3) return Usage();
    c.verb = ExtVerb::kGroup;
    std::uint64_t mask = 0;
    if (!config::ParseUnsigned(w[2], mask) || mask > 0xffffffffull) {
      return Refuse("expected a mask from 0 to 0xffffffff (decimal or 0x...), found \"" + w[2] +
                    "\"");
    }
    c.mask = static_cast<std::uint32_t>(mask);
    return parse;
  }
  for (const NamedVerb& named : kNameVerbs) {
    if (verb != named.word) continue;
    if (w.size() != 2) return Usage();
    c.verb = named.verb;
    return parse;
  }
  return Usage();
}

std::string FormatExtCommand(const ExtCommand& command) {
  switch (command.verb) {
    case ExtVerb::kList:
      return "list";
    case ExtVerb::kAdd:
      return "add " + command.name + (command.parameters.empty() ? "" : " " + command.parameters);
    case ExtVerb::kGroup: {
      char mask[16];
      std::snprintf(mask, sizeof mask, "0x%x", static_cast<unsigned>(command.mask));
      return "group " + command.name + " " + mask;
    }
    default:
      break;
  }
  for (const NamedVerb& named : kNameVerbs) {
    if (named.verb == command.verb) return std::string(named.word) + " " + command.name;
  }
  return "list";
}

}  // namespace verdictd::extensions
