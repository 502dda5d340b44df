#include "toml_syntax.h"

#include <string>

namespace verdictd::config {
namespace {

// Empties line `line` (1-based) of `text`, keeping its newline. False when
// there is no such line or it is empty already (an error at the end of the
// document, or one that blanking cannot move past).
bool BlankLine(std::string& text, int line) {
  if (line < 1) return false;
  std::size_t begin = 0;
  for (int current = 1; current < line; ++current) {
    begin = text.find('\n', begin);
    if (begin == std::string::npos) return false;
    ++begin;
  }
  std::size_t end = text.find('\n', begin);
  if (end == std::string::npos) end = text.size();
  if (end == begin) return false;
  text.erase(begin, end - begin);
  return true;
}

}  // namespace

std::vector<Diagnostic> ParseTomlDocument(std::string_view text, std::string_view file_name,
                                          toml::table& root) {
  std::vector<Diagnostic> errors;
  std::string masked;  // the document with the failing lines blanked; copied on the first error
  std::string_view current = text;
  for (;;) {
    try {
      toml::table parsed = toml::parse(current, file_name);
      if (errors.empty()) root = std::move(parsed);
      return errors;
    } catch (const toml::parse_error& error) {
      Diagnostic d;
      d.file = std::string(file_name);
      d.line = static_cast<int>(error.source().begin.line);
      d.column = static_cast<int>(error.source().begin.column);
      d.message = "invalid TOML: " + std::string(error.description());
      // Again on the line just blanked: an error blanking cannot move past
      // (one that ends at the end of the document), already reported.
      if (!errors.empty() && errors.back().line == d.line) return errors;
      errors.push_back(std::move(d));
      if (errors.size() == kMaxSyntaxErrors) {
        Diagnostic more;
        more.file = std::string(file_name);
        more.message = "stopped after " + std::to_string(kMaxSyntaxErrors) +
                       " syntax errors; fix these and check again";
        errors.push_back(std::move(more));
        return errors;
      }
      if (masked.empty()) masked = std::string(text);
      if (!BlankLine(masked, errors.back().line)) return errors;
      current = masked;
    }
  }
}

}  // namespace verdictd::config
