#include "verdictd/rules/rule_log.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace verdictd::rules {

LogRing::LogRing(std::size_t capacity) {
  std::size_t size = 1;
  while (size < capacity) size <<= 1;
  records_.reset(new LogRecord[size]);
  mask_ = size - 1;
}

bool LogRing::Push(const LogRecord& record) noexcept {
  const std::uint64_t head = head_.load(std::memory_order_relaxed);
  if (head - cached_tail_ > mask_) {
    cached_tail_ = tail_.load(std::memory_order_acquire);
    if (head - cached_tail_ > mask_) return false;
  }
  records_[head & mask_] = record;
  head_.store(head + 1, std::memory_order_release);
  return true;
}

namespace {

const char* ProtocolName(std::uint8_t protocol) {
  switch (protocol) {
    case 1: return "ICMP";
    case 6: return "TCP";
    case 17: return "UDP";
    case 58: return "IPv6-ICMP";
    case 132: return "SCTP";
    default: return nullptr;
  }
}

void AppendJsonString(std::string& out, const char* text) {
  out.push_back('"');
  for (const char* p = text; *p != '\0'; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

}  // namespace

std::string FormatLogRecord(const LogRecord& r) {
  const std::time_t seconds = static_cast<std::time_t>(r.time_ns / 1000000000);
  const long micros = static_cast<long>((r.time_ns % 1000000000) / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char time_text[64];
  const std::size_t n = std::strftime(time_text, sizeof time_text, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(time_text + n, sizeof time_text - n, ".%06ld+0000", micros);
  char src[INET6_ADDRSTRLEN] = "", dst[INET6_ADDRSTRLEN] = "";
  const int af = r.family == 4 ? AF_INET : AF_INET6;
  inet_ntop(af, r.src.data(), src, sizeof src);
  inet_ntop(af, r.dst.data(), dst, sizeof dst);
  std::string out = "{\"timestamp\":\"";
  out += time_text;
  out += "\",\"event_type\":\"verdict\",\"queue\":" + std::to_string(r.queue);
  out += ",\"src_ip\":\"" + std::string(src) + "\"";
  if (r.has_ports) out += ",\"src_port\":" + std::to_string(r.src_port);
  out += ",\"dest_ip\":\"" + std::string(dst) + "\"";
  if (r.has_ports) out += ",\"dest_port\":" + std::to_string(r.dst_port);
  out += ",\"proto\":";
  if (const char* name = ProtocolName(r.protocol)) out += "\"" + std::string(name) + "\"";
  else out += "\"" + std::to_string(r.protocol) + "\"";
  out += ",\"length\":" + std::to_string(r.length);
  out += ",\"rule\":";
  AppendJsonString(out, r.rule.data());
  out += ",\"action\":";
  AppendJsonString(out, r.action);
  out += "}";
  return out;
}

RuleLog::RuleLog(const std::string& path, std::size_t ring_capacity) : capacity_(ring_capacity) {
  if (path == "-") {
    out_ = stdout;
  } else {
    out_ = std::fopen(path.c_str(), "a");
    if (out_ == nullptr) {
      throw std::runtime_error("cannot open the rule log '" + path + "': " + std::strerror(errno) +
                               " (fix rule_engine.log_file)");
    }
    owns_out_ = true;
  }
}

RuleLog::~RuleLog() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  DrainOnce();
  if (owns_out_) std::fclose(out_);
}

LogRing* RuleLog::ring(std::size_t worker) {
  std::lock_guard lock(mutex_);
  while (rings_.size() <= worker) rings_.push_back(std::make_unique<LogRing>(capacity_));
  return rings_[worker].get();
}

void RuleLog::Start(int period_ms) {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, period_ms] {
    while (!stop_.load(std::memory_order_relaxed)) {
      DrainOnce();
      std::this_thread::sleep_for(std::chrono::milliseconds(period_ms));
    }
  });
}

std::size_t RuleLog::DrainOnce() {
  std::lock_guard lock(mutex_);
  std::size_t total = 0;
  for (auto& ring : rings_) {
    total += ring->Drain([this](const LogRecord& record) {
      const std::string line = FormatLogRecord(record);
      std::fwrite(line.data(), 1, line.size(), out_);
      std::fputc('\n', out_);
    });
  }
  if (total > 0) {
    std::fflush(out_);
    lines_.fetch_add(total, std::memory_order_relaxed);
  }
  return total;
}

}  // namespace verdictd::rules
