// Compile(): the configuration's rules into the lookup structures of
// compiled.h. Control plane only: allocates freely, reads set files, calls the
// Hyperscan compiler. Every problem becomes a Diagnostic.
#include <net/if.h>

#include <bit>
#include <fstream>
#include <map>
#include <sstream>

#include "compiled.h"
#include "verdictd/rules/rule_set.h"

namespace verdictd::rules {
namespace {

__extension__ typedef unsigned __int128 U128;

using config::Diagnostic;
using config::RuleSpec;

struct Item {
  U128 start;
  U128 end;  // inclusive
  std::uint32_t tag;
};

U128 CidrStart(const config::Cidr& cidr) {
  U128 value = 0;
  const int bytes = cidr.family == 4 ? 4 : 16;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | cidr.bytes[i];
  return value;
}

U128 CidrEnd(const config::Cidr& cidr) {
  const int bits = cidr.family == 4 ? 32 : 128;
  const int host = bits - cidr.prefix_length;
  if (host == 0) return CidrStart(cidr);
  const U128 host_mask = host == 128 ? ~U128{0} : ((U128{1} << host) - 1);
  return CidrStart(cidr) | host_mask;
}

// The sweep that turns (possibly overlapping) tagged ranges into elementary
// intervals, each with an equivalence class: the set of rules whose ranges
// cover it. Class 0 is the empty list.
struct IntervalBuild {
  std::vector<U128> starts;
  std::vector<std::uint32_t> classes;
  std::vector<std::vector<std::uint32_t>> class_lists{{}};
};

IntervalBuild BuildIntervals(std::vector<Item>& items,
                             const std::vector<std::vector<std::uint32_t>>& tag_rules,
                             U128 space_end) {
  struct Event {
    U128 at;
    std::uint32_t tag;
    int delta;
  };
  std::vector<Event> events;
  events.reserve(items.size() * 2);
  for (const Item& item : items) {
    events.push_back({item.start, item.tag, +1});
    if (item.end != space_end) events.push_back({item.end + 1, item.tag, -1});
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.at < b.at; });
  IntervalBuild out;
  std::map<std::vector<std::uint32_t>, std::uint32_t> class_of{{{}, 0}};
  std::map<std::uint32_t, int> active;
  std::vector<std::uint32_t> key;
  auto push = [&](U128 at) {
    key.clear();
    for (auto [tag, count] : active) key.push_back(tag);
    auto it = class_of.find(key);
    std::uint32_t c = 0;
    if (it == class_of.end()) {
      std::vector<std::uint32_t> list;
      for (std::uint32_t tag : key) list.insert(list.end(), tag_rules[tag].begin(), tag_rules[tag].end());
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
      c = static_cast<std::uint32_t>(out.class_lists.size());
      out.class_lists.push_back(std::move(list));
      class_of.emplace(key, c);
    } else {
      c = it->second;
    }
    if (!out.classes.empty() && out.classes.back() == c) return;  // merge neighbours
    out.starts.push_back(at);
    out.classes.push_back(c);
  };
  std::size_t i = 0;
  if (events.empty() || events[0].at != 0) push(0);
  while (i < events.size()) {
    const U128 at = events[i].at;
    for (; i < events.size() && events[i].at == at; ++i) {
      int& count = active[events[i].tag];
      count += events[i].delta;
      if (count == 0) active.erase(events[i].tag);
    }
    push(at);
  }
  return out;
}

void FillClasses(FieldIndex& field, const std::vector<std::vector<std::uint32_t>>& lists) {
  field.class_begin.assign(1, 0);
  for (const auto& list : lists) {
    field.ids.insert(field.ids.end(), list.begin(), list.end());
    field.class_begin.push_back(static_cast<std::uint32_t>(field.ids.size()));
  }
}

void BuildAddressField(FieldIndex& field, int family, std::vector<Item>& items,
                       const std::vector<std::vector<std::uint32_t>>& tag_rules) {
  const U128 space_end = family == 4 ? U128{0xffffffffu} : ~U128{0};
  IntervalBuild build = BuildIntervals(items, tag_rules, space_end);
  FillClasses(field, build.class_lists);
  for (std::uint32_t c : build.classes) {
    const std::uint32_t begin = field.class_begin[c], end = field.class_begin[c + 1];
    field.interval_lists.push_back(
        {end - begin, end - begin == 1 ? field.ids[begin] : begin});
  }
  const int width = std::bit_width(build.starts.size());
  field.index_bits = std::clamp(width + 1, 12, 22);
  const std::size_t buckets = std::size_t{1} << field.index_bits;
  field.top.assign(buckets + 1, 0);
  const int shift = (family == 4 ? 32 : 128) - field.index_bits;
  std::size_t interval = 0;
  for (std::size_t h = 0; h <= buckets; ++h) {
    while (interval < build.starts.size() && static_cast<std::size_t>(build.starts[interval] >> shift) < h) {
      ++interval;
    }
    field.top[h] = static_cast<std::uint32_t>(interval);
  }
  for (U128 start : build.starts) {
    if (family == 4) {
      field.starts4.push_back(static_cast<std::uint32_t>(start));
    } else {
      field.starts6.push_back(static_cast<std::uint64_t>(start >> 64));
      field.starts6.push_back(static_cast<std::uint64_t>(start));
    }
  }
}

// Protocol (256 values) and ports (65536 values + "no port").
void BuildTableField(FieldIndex& field, std::size_t values, std::vector<Item>& items,
                     const std::vector<std::vector<std::uint32_t>>& tag_rules) {
  IntervalBuild build = BuildIntervals(items, tag_rules, U128{values - 1});
  FillClasses(field, build.class_lists);
  field.table.assign(values + 1, 0);  // the extra entry: class 0, no value
  for (std::size_t i = 0; i < build.starts.size(); ++i) {
    const std::size_t end = i + 1 < build.starts.size() ? static_cast<std::size_t>(build.starts[i + 1]) : values;
    for (std::size_t v = static_cast<std::size_t>(build.starts[i]); v < end; ++v) field.table[v] = build.classes[i];
  }
}

std::string RuleKey(const RuleSpec& rule) { return "rules (" + rule.name + ")"; }

struct Compiler {
  const config::RulesSection& section;
  const CompileOptions& options;
  std::vector<Diagnostic> diagnostics;
  std::map<std::string, std::vector<config::Cidr>> set_prefixes;

  void Error(const config::SourcePosition& at, std::string key, std::string message) {
    diagnostics.push_back({at.file, at.line, at.column, std::move(key), std::move(message)});
  }

  void LoadSets() {
    for (const auto* list : {&section.sets, &section.included_sets}) {
      for (const config::PrefixSetSpec& set : *list) {
        auto& prefixes = set_prefixes[set.name];
        prefixes = set.prefixes;
        if (set.file.empty()) continue;
        std::ifstream in(set.file);
        if (!in) {
          Error(set.position, "sets." + set.name + ".file",
                "cannot open prefix file '" + set.file + "' (create it or fix the path)");
          continue;
        }
        std::string line;
        int number = 0, errors = 0;
        while (std::getline(in, line)) {
          ++number;
          if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
          const auto first = line.find_first_not_of(" \t\r");
          if (first == std::string::npos) continue;
          const auto last = line.find_last_not_of(" \t\r");
          config::Cidr cidr;
          std::string error;
          if (config::ParseCidr(std::string_view(line).substr(first, last - first + 1), cidr, error)) {
            prefixes.push_back(cidr);
          } else if (++errors <= 10) {
            diagnostics.push_back({set.file, number, static_cast<int>(first) + 1, "sets." + set.name, error});
          }
        }
        if (errors > 10) {
          Error(set.position, "sets." + set.name,
                std::to_string(errors - 10) + " more bad lines in '" + set.file + "'");
        }
      }
    }
  }

  std::uint32_t Resolve(const std::string& name) const {
    if (options.resolve_interface) return options.resolve_interface(name);
    return if_nametoindex(name.c_str());
  }

  static std::string LiteralExpression(const std::string& bytes) {
    std::string out;
    char buffer[8];
    for (unsigned char byte : bytes) {
      std::snprintf(buffer, sizeof buffer, "\\x%02x", byte);
      out += buffer;
    }
    return out;
  }

  void CompileContent(RuleSet& set, const std::vector<const RuleSpec*>& specs) {
    std::vector<std::string> expressions;
    std::vector<unsigned> flags;
    std::vector<unsigned> ids;
    std::vector<hs_expr_ext_t> extensions;
    std::vector<std::pair<const RuleSpec*, const config::ContentSpec*>> origin;
    for (std::size_t r = 0; r < specs.size(); ++r) {
      for (const config::ContentSpec& content : specs[r]->contents) {
        const auto id = static_cast<std::uint32_t>(expressions.size());
        set.rules[r].patterns.push_back(id);
        expressions.push_back(content.regex ? content.pattern : LiteralExpression(content.pattern));
        unsigned f = HS_FLAG_SINGLEMATCH;
        if (content.nocase) f |= HS_FLAG_CASELESS;
        flags.push_back(f);
        ids.push_back(id);
        hs_expr_ext_t ext{};
        // Hyperscan bounds where a match ends. A literal that starts at or
        // after `offset` ends at or after offset+length.
        const std::uint64_t length = content.regex ? 0 : content.pattern.size();
        if (content.offset > 0) {
          ext.flags |= HS_EXT_FLAG_MIN_OFFSET;
          ext.min_offset = content.offset + length;
        }
        if (content.depth) {
          ext.flags |= HS_EXT_FLAG_MAX_OFFSET;
          ext.max_offset = content.offset + *content.depth;
        }
        extensions.push_back(ext);
        origin.emplace_back(specs[r], &content);
      }
    }
    set.pattern_count = static_cast<std::uint32_t>(expressions.size());
    if (expressions.empty()) return;
    auto compile = [&](std::size_t first, std::size_t count, hs_database_t** db,
                       hs_compile_error_t** error) {
      std::vector<const char*> exprs;
      std::vector<const hs_expr_ext_t*> exts;
      for (std::size_t i = first; i < first + count; ++i) {
        exprs.push_back(expressions[i].c_str());
        exts.push_back(&extensions[i]);
      }
      return hs_compile_ext_multi(exprs.data(), flags.data() + first, ids.data() + first,
                                  exts.data(), static_cast<unsigned>(count), HS_MODE_BLOCK,
                                  nullptr, db, error);
    };
    hs_database_t* db = nullptr;
    hs_compile_error_t* error = nullptr;
    if (compile(0, expressions.size(), &db, &error) == HS_SUCCESS) {
      set.database.reset(db);
      return;
    }
    const std::string whole = error ? error->message : "unknown error";
    hs_free_compile_error(error);
    // Hyperscan names only the first bad pattern: compile each alone to report all.
    bool found = false;
    for (std::size_t i = 0; i < expressions.size(); ++i) {
      hs_database_t* single = nullptr;
      hs_compile_error_t* single_error = nullptr;
      if (compile(i, 1, &single, &single_error) == HS_SUCCESS) {
        hs_free_database(single);
        continue;
      }
      found = true;
      Error(origin[i].second->position, RuleKey(*origin[i].first) + ".content",
            std::string(origin[i].second->regex ? "bad regex '" : "bad literal '") +
                origin[i].second->pattern + "': " + (single_error ? single_error->message : "?"));
      hs_free_compile_error(single_error);
    }
    if (!found) {
      Error(specs.front()->position, "rules.content", "the content patterns do not compile together: " + whole);
    }
  }

  std::shared_ptr<RuleSet> Run() {
    auto set = std::make_shared<RuleSet>();
    set->settings = section.engine;
    set->no_match = options.no_match;
    set->unparseable = options.unparseable;
    LoadSets();
    std::vector<const RuleSpec*> specs;
    for (const RuleSpec& rule : section.rules) specs.push_back(&rule);
    for (const RuleSpec& rule : section.included_rules) specs.push_back(&rule);
    const auto n = static_cast<std::uint32_t>(specs.size());
    set->rules.resize(n);

    // Items per indexed field: tags 0..n-1 are rules, n+k is the k-th set.
    std::array<std::vector<Item>, kFieldCount> items;
    std::array<std::vector<std::vector<std::uint32_t>>, kFieldCount> tag_rules;
    std::vector<std::string> set_names;
    for (const auto& [name, prefixes] : set_prefixes) set_names.push_back(name);
    for (auto& tags : tag_rules) {
      tags.resize(n + set_names.size());
      for (std::uint32_t r = 0; r < n; ++r) tags[r] = {r};
    }
    auto set_tag = [&](const std::string& name) {
      return n + static_cast<std::uint32_t>(std::lower_bound(set_names.begin(), set_names.end(), name) -
                                            set_names.begin());
    };
    std::array<std::vector<bool>, kFieldCount> set_used;
    for (auto& used : set_used) used.assign(set_names.size(), false);

    for (std::uint32_t r = 0; r < n; ++r) {
      const RuleSpec& spec = *specs[r];
      CompiledRule& rule = set->rules[r];
      rule.name = spec.name;
      rule.position = spec.position;
      rule.family = spec.family.value_or(0);
      auto add_addresses = [&](const std::vector<config::Cidr>& cidrs,
                               const std::vector<std::string>& sets, Field f4, Field f6,
                               LogicalField logical) {
        if (cidrs.empty() && sets.empty()) return;
        rule.constrains |= logical;
        for (const config::Cidr& cidr : cidrs) {
          items[cidr.family == 4 ? f4 : f6].push_back({CidrStart(cidr), CidrEnd(cidr), r});
        }
        for (const std::string& name : sets) {
          if (set_prefixes.count(name) == 0) continue;  // reported by the parser
          const std::uint32_t tag = set_tag(name);
          tag_rules[f4][tag].push_back(r);
          tag_rules[f6][tag].push_back(r);
          set_used[f4][tag - n] = true;
          set_used[f6][tag - n] = true;
        }
      };
      add_addresses(spec.src, spec.src_sets, kSrc4, kSrc6, kLogicalSrc);
      add_addresses(spec.dst, spec.dst_sets, kDst4, kDst6, kLogicalDst);
      if (!spec.protocols.empty()) {
        rule.constrains |= kLogicalProto;
        for (std::uint8_t p : spec.protocols) items[kProto].push_back({p, p, r});
      }
      for (auto [ports, field, logical] :
           {std::tuple{&spec.src_ports, kSrcPort, kLogicalSrcPort},
            std::tuple{&spec.dst_ports, kDstPort, kLogicalDstPort}}) {
        if (ports->empty()) continue;
        rule.constrains |= logical;
        for (const config::ValueRange& range : *ports) items[field].push_back({range.low, range.high, r});
      }
      rule.needs_l4 = !spec.src_ports.empty() || !spec.dst_ports.empty() || spec.tcp_flags ||
                      spec.icmp_type || spec.icmp_code;
      if (spec.tcp_flags) {
        rule.has_tcp_flags = true;
        rule.tcp_flags_mask = static_cast<std::uint8_t>(spec.tcp_flags->mask);
        rule.tcp_flags_value = static_cast<std::uint8_t>(spec.tcp_flags->value);
      }
      rule.has_icmp_type = spec.icmp_type.has_value();
      rule.icmp_type = spec.icmp_type.value_or(0);
      rule.has_icmp_code = spec.icmp_code.has_value();
      rule.icmp_code = spec.icmp_code.value_or(0);
      for (auto [names, out, key] :
           {std::tuple{&spec.in_interfaces, &rule.in_interfaces, "in_interface"},
            std::tuple{&spec.out_interfaces, &rule.out_interfaces, "out_interface"}}) {
        for (const std::string& name : *names) {
          const std::uint32_t index = Resolve(name);
          if (index == 0 && !spec.allow_unknown_interfaces && !options.allow_unknown_interfaces) {
            Error(spec.position, RuleKey(spec) + "." + key,
                  "unknown interface '" + name +
                      "' (create it first, or set allow_unknown_interfaces = true)");
          }
          out->push_back(index);
        }
      }
      if (spec.mark) {
        rule.has_mark = true;
        rule.mark_value = spec.mark->value;
        rule.mark_mask = spec.mark->mask;
      }
      for (config::CtState state : spec.ct_states) rule.ct_states |= static_cast<std::uint8_t>(1u << static_cast<int>(state));
      for (auto [range, has, out] : {std::tuple{&spec.uid, &rule.has_uid, &rule.uid},
                                     std::tuple{&spec.gid, &rule.has_gid, &rule.gid},
                                     std::tuple{&spec.length, &rule.has_length, &rule.length}}) {
        if (!*range) continue;
        *has = true;
        *out = Range32{(*range)->low, (*range)->high};
      }
      const config::ActionSpec& a = spec.action;
      rule.action = Action{a.kind, a.queue, a.mark.value, a.mark.mask, a.then, a.rate, a.burst,
                           a.over_limit, a.after_packets, a.after_bytes, a.via};
      rule.log = spec.log;
      if (spec.family && spec.protocols.size() > 0) {
        for (std::uint8_t p : spec.protocols) {
          if ((p == 1 && *spec.family == 6) || (p == 58 && *spec.family == 4)) {
            Error(spec.position, RuleKey(spec) + ".protocol",
                  std::string("contradiction: ") + (p == 1 ? "icmp" : "icmpv6") + " with family ipv" +
                      std::to_string(*spec.family) + " never matches");
          }
        }
      }
      rule.residual = rule.family != 0 || rule.needs_l4 || !rule.in_interfaces.empty() ||
                      !rule.out_interfaces.empty() || rule.has_mark || rule.ct_states != 0 ||
                      rule.has_uid || rule.has_gid || rule.has_length || !spec.contents.empty();
    }
    for (int f : {kSrc4, kDst4, kSrc6, kDst6}) {
      for (std::size_t k = 0; k < set_names.size(); ++k) {
        if (!set_used[f][k]) continue;
        const int family = (f == kSrc4 || f == kDst4) ? 4 : 6;
        for (const config::Cidr& cidr : set_prefixes[set_names[k]]) {
          if (cidr.family == family) {
            items[f].push_back({CidrStart(cidr), CidrEnd(cidr), n + static_cast<std::uint32_t>(k)});
          }
        }
      }
    }
    CompileContent(*set, specs);
    if (!diagnostics.empty()) return nullptr;

    const std::uint8_t logical[kFieldCount] = {kLogicalSrc, kLogicalDst, kLogicalSrc, kLogicalDst,
                                               kLogicalProto, kLogicalSrcPort, kLogicalDstPort};
    for (int f = 0; f < kFieldCount; ++f) {
      FieldIndex& field = set->fields[f];
      for (std::uint32_t r = 0; r < n; ++r) {
        if (set->rules[r].constrains & logical[f]) field.used = true;
        else field.wildcard.push_back(r);
      }
      set->prefix_count += f <= kDst6 ? items[f].size() : 0;
      switch (f) {
        case kSrc4:
        case kDst4: BuildAddressField(field, 4, items[f], tag_rules[f]); break;
        case kSrc6:
        case kDst6: BuildAddressField(field, 6, items[f], tag_rules[f]); break;
        case kProto: BuildTableField(field, 256, items[f], tag_rules[f]); break;
        default: BuildTableField(field, 65536, items[f], tag_rules[f]); break;
      }
    }
    for (std::uint32_t r = 0; r < n; ++r) set->all_rules.push_back(r);
    set->hot.resize(n);
    for (std::uint32_t r = 0; r < n; ++r) {
      const RuleSpec& spec = *specs[r];
      const CompiledRule& rule = set->rules[r];
      HotRule& hot = set->hot[r];
      hot.residual = rule.residual;
      hot.constrains = rule.constrains & (kLogicalSrc | kLogicalDst);
      hot.has_proto = !spec.protocols.empty();
      for (std::uint8_t p : spec.protocols) hot.proto_bits[p / 64] |= std::uint64_t{1} << (p % 64);
      if (spec.src_ports.size() > HotRule::kInlineRanges || spec.dst_ports.size() > HotRule::kInlineRanges) {
        hot.port_lists = true;
        hot.constrains |= rule.constrains & (kLogicalSrcPort | kLogicalDstPort);
        continue;
      }
      for (const auto& range : spec.src_ports) {
        hot.src_low[hot.src_port_ranges] = static_cast<std::uint16_t>(range.low);
        hot.src_high[hot.src_port_ranges++] = static_cast<std::uint16_t>(range.high);
      }
      for (const auto& range : spec.dst_ports) {
        hot.dst_low[hot.dst_port_ranges] = static_cast<std::uint16_t>(range.low);
        hot.dst_high[hot.dst_port_ranges++] = static_cast<std::uint16_t>(range.high);
      }
    }
    // After the last change to set->rules: the keys view their names.
    set->rule_by_name.reserve(set->rules.size());
    for (std::size_t i = 0; i < set->rules.size(); ++i) {
      set->rule_by_name.emplace(set->rules[i].name, static_cast<std::uint32_t>(i));
    }
    return set;
  }
};

}  // namespace

CompileResult Compile(const config::RulesSection& section, const CompileOptions& options) {
  Compiler compiler{section, options, {}, {}};
  CompileResult result;
  result.rules = compiler.Run();
  result.diagnostics = std::move(compiler.diagnostics);
  if (!result.diagnostics.empty()) result.rules = nullptr;
  return result;
}

CompileResult CompileConfig(const config::Config& config, CompileOptions options) {
  options.no_match = config.verdict.default_verdict;
  options.unparseable = config.verdict.unparseable_verdict;
  return Compile(config.rules, options);
}

std::string FormatDiagnostic(const config::Diagnostic& d) {
  return d.file + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.key +
         ": " + d.message;
}

namespace {
std::string JoinDiagnostics(const std::vector<config::Diagnostic>& diagnostics) {
  std::string out = "the rules do not compile:";
  for (const auto& d : diagnostics) out += "\n  " + FormatDiagnostic(d);
  return out;
}
}  // namespace

CompileError::CompileError(std::vector<config::Diagnostic> diagnostics)
    : std::runtime_error(JoinDiagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}

std::shared_ptr<const RuleSet> CompileOrThrow(const config::RulesSection& section,
                                              const CompileOptions& options) {
  CompileResult result = Compile(section, options);
  if (!result.diagnostics.empty()) throw CompileError(std::move(result.diagnostics));
  return result.rules;
}

}  // namespace verdictd::rules
