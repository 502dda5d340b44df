// Nearest-valid-name suggestions for misspelt keys and values.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace verdictd::config {

// Optimal-string-alignment distance (insertions, deletions, substitutions and
// swaps of neighbours each cost 1), ignoring ASCII case.
std::size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a plausible
// typo (distance at most max(2, length/3)), else "".
std::string NearestName(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace verdictd::config
