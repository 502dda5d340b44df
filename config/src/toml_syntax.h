// Parsing a TOML document with every syntax error reported, not only the
// first. toml++ stops at the first error; to find the next ones the offending
// line is blanked (line numbers stay) and the document parsed again, up to
// kMaxSyntaxErrors times. An error that a blanked line only caused (a table
// header gone, a multi-line value cut) can follow a real one, which is why the
// loader checks the values only of a document without syntax errors.
#pragma once

#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "verdictd/config/diagnostic.h"

namespace verdictd::config {

inline constexpr std::size_t kMaxSyntaxErrors = 20;

// On success stores the document in `root` and returns no diagnostic;
// otherwise returns one diagnostic per syntax error (file:line:column,
// "invalid TOML: ...") and leaves `root` alone.
std::vector<Diagnostic> ParseTomlDocument(std::string_view text, std::string_view file_name,
                                          toml::table& root);

}  // namespace verdictd::config
