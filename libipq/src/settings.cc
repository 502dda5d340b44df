#include "settings.hh"

#include <cerrno>
#include <cstdlib>
#include <limits>

namespace verdictd::libipq {
namespace {

// A whole decimal number in [min, max], with an optional k/m suffix
// (x1024) when `suffixes`; false on anything else.
bool ParseNumber(const char* text, unsigned long long min, unsigned long long max, bool suffixes,
                 unsigned long long& out) {
  if (text[0] < '0' || text[0] > '9') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0) return false;
  if (suffixes && (*end == 'k' || *end == 'K' || *end == 'm' || *end == 'M')) {
    const unsigned long long scale = (*end == 'k' || *end == 'K') ? 1024ull : 1024ull * 1024;
    if (value > std::numeric_limits<unsigned long long>::max() / scale) return false;
    value *= scale;
    ++end;
  }
  if (*end != '\0' || value < min || value > max) return false;
  out = value;
  return true;
}

std::string Problem(const char* name, const char* value, const char* expected) {
  return std::string(name) + "='" + value + "': expected " + expected;
}

}  // namespace

std::string ReadSettings(EnvLookup lookup, Settings& out) {
  Settings s = out;
  unsigned long long n = 0;
  if (const char* v = lookup("LIBIPQ_QUEUE"); v != nullptr) {
    if (!ParseNumber(v, 0, 65535, false, n)) {
      return Problem("LIBIPQ_QUEUE", v, "a queue number 0..65535 (as in -j NFQUEUE --queue-num N)");
    }
    s.queue_num = static_cast<std::uint16_t>(n);
  }
  if (const char* v = lookup("LIBIPQ_RCVBUF"); v != nullptr) {
    if (!ParseNumber(v, 4096, 1ull << 30, true, n)) {
      return Problem("LIBIPQ_RCVBUF", v,
                     "a size in bytes 4096..1073741824 (suffix k or m allowed)");
    }
    s.receive_buffer_bytes = static_cast<std::size_t>(n);
  }
  if (const char* v = lookup("LIBIPQ_QUEUE_MAXLEN"); v != nullptr) {
    if (!ParseNumber(v, 1, 1u << 20, false, n)) {
      return Problem("LIBIPQ_QUEUE_MAXLEN", v, "a packet count 1..1048576");
    }
    s.max_queue_length = static_cast<std::uint32_t>(n);
  }
  if (const char* v = lookup("LIBIPQ_FAIL_OPEN"); v != nullptr) {
    if (!ParseNumber(v, 0, 1, false, n)) return Problem("LIBIPQ_FAIL_OPEN", v, "0 or 1");
    s.fail_open = n == 1;
  }
  if (const char* v = lookup("LIBIPQ_BATCH"); v != nullptr) {
    if (!ParseNumber(v, 1, 1024, false, n)) {
      return Problem("LIBIPQ_BATCH", v, "datagrams per receive 1..1024");
    }
    s.batch_size = static_cast<std::size_t>(n);
  }
  if (const char* v = lookup("LIBIPQ_COALESCE_US"); v != nullptr) {
    if (!ParseNumber(v, 0, 100000, false, n)) {
      return Problem("LIBIPQ_COALESCE_US", v, "microseconds 0..100000 (0: off)");
    }
    s.coalesce_us = static_cast<std::uint32_t>(n);
  }
  out = s;
  return "";
}

}  // namespace verdictd::libipq
