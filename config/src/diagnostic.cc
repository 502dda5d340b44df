#include "verdictd/config/diagnostic.h"

namespace verdictd::config {

std::string Diagnostic::ToString() const {
  std::string text = file;
  if (line > 0) {
    text += ':' + std::to_string(line) + ':' + std::to_string(column);
  }
  text += ": ";
  if (!key.empty()) text += key + ": ";
  text += message;
  return text;
}

}  // namespace verdictd::config
