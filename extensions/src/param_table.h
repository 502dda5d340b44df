// An extension's static parameter table (ABI 1.1): the checks of the table
// itself, of a parameter string against it, and its help text.
//
// Control thread; plain functions returning "" or the problem (no throw
// beyond std::bad_alloc).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "verdictd/extension.h"

namespace verdictd::extensions {

// The table of `api`, empty when the struct predates 1.1 or declares none.
std::span<const verdictd_param_t> ParamTable(const verdictd_extension_api_t& api) noexcept;

// Why the table cannot be used (a NULL or malformed name, an unknown type,
// min > max), or "".
std::string ParamTableProblem(std::span<const verdictd_param_t> table);

// Why `parameters` ("name=value,flag,...") does not fit the table, naming
// the parameter, or "". An empty string fits any table.
std::string ParametersAgainstTable(std::span<const verdictd_param_t> table,
                                   const std::string& parameters);

// One line per parameter: name, type and range, default, help.
std::string DescribeParamTable(std::span<const verdictd_param_t> table);

}  // namespace verdictd::extensions
