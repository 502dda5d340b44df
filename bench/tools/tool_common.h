// Shared bits of the load-test tools: flag parsing, CPU pinning, clocks,
// address parsing. Header-only, no project dependencies.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sched.h>
#include <time.h>

#include <csignal>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace tools {

// --name value flags. Unknown flags and missing values are errors.
class Flags {
 public:
  Flags(int argc, char** argv, const char* usage) : usage_(usage) {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") Die("");
      if (arg.rfind("--", 0) != 0 || i + 1 >= argc) Die(("bad argument: " + arg).c_str());
      values_[arg.substr(2)] = argv[++i];
    }
  }
  std::string Str(const std::string& name, const std::string& fallback) {
    used_.push_back(name);
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  double Num(const std::string& name, double fallback) {
    const std::string value = Str(name, "");
    if (value.empty()) return fallback;
    char* end = nullptr;
    const double number = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') Die(("--" + name + " needs a number").c_str());
    return number;
  }
  // Call after reading every flag: rejects the ones nobody asked for.
  void CheckAllUsed() {
    for (const auto& [name, value] : values_) {
      bool known = false;
      for (const auto& used : used_) known = known || used == name;
      if (!known) Die(("unknown flag --" + name).c_str());
    }
  }
  [[noreturn]] void Die(const char* message) const {
    if (message[0] != '\0') std::fprintf(stderr, "error: %s\n", message);
    std::fprintf(stderr, "%s", usage_);
    std::exit(2);
  }

 private:
  const char* usage_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> used_;
};

inline std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (char c : text) {
    if (c == ',') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  if (!item.empty()) out.push_back(item);
  return out;
}

inline in_addr ParseIpv4(const std::string& text) {
  in_addr addr{};
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1) {
    throw std::runtime_error("not an IPv4 address: " + text);
  }
  return addr;
}

inline std::string FormatIpv4(in_addr addr) {
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr, text, sizeof text);
  return text;
}

// Pins the calling thread; cpu < 0 leaves it alone. Returns the CPU it runs on.
inline int PinToCpu(int cpu) {
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "error: cannot pin to CPU %d: %s\n", cpu, std::strerror(errno));
      std::exit(1);
    }
  }
  return sched_getcpu();
}

inline std::int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

inline void SleepUntilNs(std::int64_t deadline_ns) {
  timespec ts{};
  ts.tv_sec = deadline_ns / 1000000000;
  ts.tv_nsec = deadline_ns % 1000000000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

// Set by SIGINT/SIGTERM (and SIGALRM where asked); the tools' loops check it.
inline volatile std::sig_atomic_t g_stop = 0;
inline void OnStopSignal(int) { g_stop = 1; }

// No SA_RESTART: a signal ends a blocking wait, and the loop condition decides.
inline void InstallStopHandlers(bool with_alarm = false) {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  if (with_alarm) sigaction(SIGALRM, &action, nullptr);
}

// Binds a UDP socket to ip:port; prints why and returns false when it cannot.
inline bool BindUdp(int fd, const std::string& ip, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr = ParseIpv4(ip);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "error: bind %s:%d: %s\n", ip.c_str(), port, std::strerror(errno));
    return false;
  }
  return true;
}

// Creates an empty file so a waiting harness knows the tool is listening.
inline void TouchReadyFile(const std::string& path) {
  if (path.empty()) return;
  if (FILE* f = std::fopen(path.c_str(), "w")) std::fclose(f);
}

}  // namespace tools
