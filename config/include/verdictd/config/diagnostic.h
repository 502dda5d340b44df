// One configuration error, with where it was found and what to do.
// Config functions report every error they find as a list of these, never
// only the first.
#pragma once

#include <string>

namespace verdictd::config {

struct Diagnostic {
  std::string file;    // the file it was found in ("<defaults>", "<command line>")
  int line = 0;        // 1-based; 0 when unknown
  int column = 0;      // 1-based; 0 when unknown
  std::string key;     // dotted path, e.g. "queues[1].copy_range" or "rules[3].dst_ports"
  std::string message; // what was expected, what was found, what to do

  // "file:line:column: key: message"; ":line:column" is left out when line
  // is 0 and "key: " when key is empty. The loader's messages read
  // "expected <what>, found <what>[; <hint>]", or "unknown key; ...".
  std::string ToString() const;
};

}  // namespace verdictd::config
