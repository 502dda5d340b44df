#include "param_table.h"

#include <set>
#include <string_view>

#include "verdictd/config/values.h"

namespace verdictd::extensions {
namespace {

bool NameChar(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

std::string KnownNames(std::span<const verdictd_param_t> table) {
  std::string names;
  for (const verdictd_param_t& p : table) names += (names.empty() ? "" : ", ") + std::string(p.name);
  return names;
}

std::string TypeText(const verdictd_param_t& p) {
  switch (p.type) {
    case VERDICTD_PARAM_FLAG:
      return "flag (no value)";
    case VERDICTD_PARAM_UINT:
      return "unsigned integer in " + std::to_string(p.min) + ".." + std::to_string(p.max);
    case VERDICTD_PARAM_STRING:
      return p.max == 0 ? "text of at least " + std::to_string(p.min) + " bytes"
                        : "text of " + std::to_string(p.min) + ".." + std::to_string(p.max) +
                              " bytes";
    default:
      return "?";
  }
}

}  // namespace

std::span<const verdictd_param_t> ParamTable(const verdictd_extension_api_t& api) noexcept {
  if (api.api_size < VERDICTD_EXTENSION_API_SIZE_1_1 || api.params == nullptr ||
      api.param_count == 0) {
    return {};
  }
  return {api.params, api.param_count};
}

std::string ParamTableProblem(std::span<const verdictd_param_t> table) {
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < table.size(); ++i) {
    const verdictd_param_t& p = table[i];
    const std::string where = "entry " + std::to_string(i);
    if (p.name == nullptr || p.name[0] == '\0') return where + " has no name";
    for (const char* c = p.name; *c != '\0'; ++c) {
      if (!NameChar(*c)) return where + " (\"" + p.name + "\") has a character outside [A-Za-z0-9_.-]";
    }
    if (!seen.insert(p.name).second) return where + " repeats the name \"" + p.name + "\"";
    if (p.type > VERDICTD_PARAM_STRING) {
      return where + " (\"" + p.name + "\") has the unknown type " + std::to_string(p.type);
    }
    if (p.type != VERDICTD_PARAM_FLAG && p.max != 0 && p.min > p.max) {
      return where + " (\"" + p.name + "\") has min " + std::to_string(p.min) + " > max " +
             std::to_string(p.max);
    }
  }
  return "";
}

std::string ParametersAgainstTable(std::span<const verdictd_param_t> table,
                                   const std::string& parameters) {
  if (table.empty() || parameters.empty()) return "";
  std::set<std::string_view> given;
  std::string_view rest = parameters;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const std::size_t equals = item.find('=');
    const std::string_view name = item.substr(0, equals);
    const verdictd_param_t* param = nullptr;
    for (const verdictd_param_t& p : table) {
      if (name == p.name) param = &p;
    }
    if (param == nullptr) {
      return "parameter \"" + std::string(name) + "\": unknown (known: " + KnownNames(table) + ")";
    }
    if (!given.insert(name).second) return "parameter \"" + std::string(name) + "\": given twice";
    const bool has_value = equals != std::string_view::npos;
    const std::string_view value = has_value ? item.substr(equals + 1) : std::string_view{};
    const std::string expected = "expected " + TypeText(*param);
    switch (param->type) {
      case VERDICTD_PARAM_FLAG:
        if (has_value) {
          return "parameter \"" + std::string(name) + "\": " + expected + ", found \"" +
                 std::string(item) + "\"";
        }
        break;
      case VERDICTD_PARAM_UINT: {
        std::uint64_t v = 0;
        if (!has_value || !config::ParseUnsigned(value, v) || v < param->min || v > param->max) {
          return "parameter \"" + std::string(name) + "\": " + expected + ", found " +
                 (has_value ? "\"" + std::string(value) + "\"" : std::string("no value"));
        }
        break;
      }
      case VERDICTD_PARAM_STRING:
        if (!has_value || value.size() < param->min ||
            (param->max != 0 && value.size() > param->max)) {
          return "parameter \"" + std::string(name) + "\": " + expected + ", found " +
                 (has_value ? std::to_string(value.size()) + " bytes" : std::string("no value"));
        }
        break;
      default:
        break;
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return "";
}

std::string DescribeParamTable(std::span<const verdictd_param_t> table) {
  std::string text;
  for (const verdictd_param_t& p : table) {
    text += "  " + std::string(p.name) + (p.type == VERDICTD_PARAM_FLAG ? "" : "=...") + "  " +
            TypeText(p);
    if (p.default_value != nullptr) text += ", default " + std::string(p.default_value);
    if (p.help != nullptr && p.help[0] != '\0') text += ": " + std::string(p.help);
    text += "\n";
  }
  return text;
}

}  // namespace verdictd::extensions
