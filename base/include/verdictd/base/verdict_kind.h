// The verdict kinds verdictd gives a packet, and the one table that names
// them. Everything that prints, parses, counts or encodes a verdict kind
// reads this table: the configuration's words ("accept", "queue:N"), the
// metric labels, the rule log, `ctl status` and the kernel's verdict code.
// A new kind is one enumerator and one row here; only code that depends on
// what a kind does (e.g. kQueue's target queue) names it.
//
// Header only, constexpr, no allocation, usable on the hot path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace verdictd::base {

enum class VerdictKind : std::uint8_t { kAccept, kDrop, kRepeat, kQueue, kStop };

struct VerdictKindInfo {
  VerdictKind kind;
  // Stable lowercase name: configuration, logs, metric labels, ctl output.
  const char* name;
  // The kernel's verdict code (NF_ACCEPT ... NF_STOP in <linux/netfilter.h>);
  // for kinds with a target queue, the queue number goes into its upper 16
  // bits (NF_VERDICT_QBITS).
  std::uint32_t kernel_code;
  // The kind takes a target queue, written NAME:N in a setting.
  bool has_target_queue;
  // How a setting of this kind is written ("accept", "queue:N").
  const char* setting_form;
};

// In enumerator order: row i describes VerdictKind(i).
inline constexpr std::array<VerdictKindInfo, 5> kVerdictKinds{{
    {VerdictKind::kAccept, "accept", 1, false, "accept"},  // NF_ACCEPT
    {VerdictKind::kDrop, "drop", 0, false, "drop"},        // NF_DROP
    {VerdictKind::kRepeat, "repeat", 4, false, "repeat"},  // NF_REPEAT
    {VerdictKind::kQueue, "queue", 3, true, "queue:N"},    // NF_QUEUE
    {VerdictKind::kStop, "stop", 5, false, "stop"},        // NF_STOP
}};
inline constexpr std::size_t kVerdictKindCount = kVerdictKinds.size();

namespace internal {
constexpr bool RowsInEnumOrder() noexcept {
  for (std::size_t i = 0; i < kVerdictKinds.size(); ++i) {
    if (static_cast<std::size_t>(kVerdictKinds[i].kind) != i) return false;
  }
  return true;
}
}  // namespace internal
static_assert(internal::RowsInEnumOrder(), "kVerdictKinds: row i must describe VerdictKind(i)");

constexpr const VerdictKindInfo& VerdictKindInfoOf(VerdictKind kind) noexcept {
  const auto index = static_cast<std::size_t>(kind);
  return kVerdictKinds[index < kVerdictKindCount ? index : 0];
}

constexpr const char* VerdictKindName(VerdictKind kind) noexcept {
  return VerdictKindInfoOf(kind).name;
}

// The kind named `name` ("accept", ..., "queue"), or nullopt.
constexpr std::optional<VerdictKind> ParseVerdictKind(std::string_view name) noexcept {
  for (const VerdictKindInfo& row : kVerdictKinds) {
    if (name == row.name) return row.kind;
  }
  return std::nullopt;
}

// The kind of a kernel verdict code (its low 16 bits, NF_VERDICT_MASK; the
// upper bits carry the target queue), or nullopt for a code verdictd does
// not give.
constexpr std::optional<VerdictKind> VerdictKindOfKernelCode(std::uint32_t code) noexcept {
  for (const VerdictKindInfo& row : kVerdictKinds) {
    if ((code & 0xffffu) == row.kernel_code) return row.kind;
  }
  return std::nullopt;
}

// The names indexed by kind (metric labels, counter tables).
constexpr std::array<const char*, kVerdictKindCount> VerdictKindNames() noexcept {
  std::array<const char*, kVerdictKindCount> names{};
  for (std::size_t i = 0; i < kVerdictKindCount; ++i) names[i] = kVerdictKinds[i].name;
  return names;
}

// The forms a verdict setting is written in, for "expected one of"
// messages: the kinds without a target first, then those with one
// ("accept", "drop", "repeat", "stop", "queue:N").
constexpr std::array<std::string_view, kVerdictKindCount> VerdictSettingWords() noexcept {
  std::array<std::string_view, kVerdictKindCount> words{};
  std::size_t n = 0;
  for (const bool target : {false, true}) {
    for (const VerdictKindInfo& row : kVerdictKinds) {
      if (row.has_target_queue == target) words[n++] = row.setting_form;
    }
  }
  return words;
}

}  // namespace verdictd::base
