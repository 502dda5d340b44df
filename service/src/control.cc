#include "verdictd/service/control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <stdexcept>
#include <vector>

#include "verdictd/config/loader.h"
#include "verdictd/config/values.h"
#include "verdictd/service/control_command.h"
#include "verdictd/service/reload.h"

namespace verdictd::service {

namespace {

constexpr std::size_t kMaxRequest = 256;
constexpr int kClientTimeoutMs = 1000;
constexpr std::size_t kMaxClients = 32;  // connections read at once; more get "busy"
constexpr int kListenBacklog = 64;

std::string Errno() { return std::strerror(errno); }

sockaddr_un Address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    throw std::runtime_error("control socket path '" + path + "' must be 1 to " +
                             std::to_string(sizeof(address.sun_path) - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

// Connects to `path`; returns the fd or -1 (errno set).
int Connect(const std::string& path) {
  const sockaddr_un address = Address(path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

void SetTimeouts(int fd, int ms) {
  timeval timeout{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  return text;
}

bool Printable(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return false;
    }
  }
  return true;
}

}  // namespace

ControlServer::ControlServer(std::string path, Handler handler,
                             metrics::ServiceCounters& counters)
    : path_(std::move(path)), handler_(std::move(handler)), counters_(counters) {
  const sockaddr_un address = Address(path_);
  // A leftover socket file from a crashed run is replaced; one that a live
  // process still serves is not.
  struct stat existing {};
  if (::lstat(path_.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      throw std::runtime_error("control socket path " + path_ +
                               " exists and is not a socket; remove it or set [control] socket");
    }
    if (const int fd = Connect(path_); fd >= 0) {
      ::close(fd);
      throw std::runtime_error("control socket " + path_ +
                               " is served by another running process (another verdictd?)");
    }
    ::unlink(path_.c_str());
  }
  // The parent directory (/run/verdictd) is created when missing, private.
  if (const auto slash = path_.rfind('/'); slash != std::string::npos && slash > 0) {
    const std::string dir = path_.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      throw std::runtime_error("cannot create the control socket directory " + dir + ": " +
                               Errno());
    }
  }
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("control socket: socket(): " + Errno());
  // umask makes the socket 0600 from the moment it exists (no chmod race).
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0 || ::listen(listen_fd_, kListenBacklog) != 0) {
    const std::string why = std::strerror(bound != 0 ? bind_errno : errno);
    ::close(listen_fd_);
    throw std::runtime_error("cannot listen on control socket " + path_ + ": " + why +
                             "; set [control] socket or disable it with [control] enabled = false");
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    ::close(listen_fd_);
    ::unlink(path_.c_str());
    throw std::runtime_error("control socket: eventfd(): " + Errno());
  }
  thread_ = std::thread([this] { Serve(); });
}

ControlServer::ControlServer(std::string path, int listen_fd, Handler handler,
                             metrics::ServiceCounters& counters)
    : path_(std::move(path)), handler_(std::move(handler)), counters_(counters),
      listen_fd_(listen_fd) {
  int type = 0, listening = 0;
  socklen_t size = sizeof type;
  socklen_t size2 = sizeof listening;
  sockaddr_un local{};
  socklen_t local_size = sizeof local;
  if (::getsockopt(listen_fd_, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_STREAM ||
      ::getsockopt(listen_fd_, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size2) != 0 ||
      listening == 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
      local.sun_family != AF_UNIX) {
    ::close(listen_fd_);
    throw std::runtime_error("control socket: the handed-over descriptor is not a listening "
                             "unix stream socket");
  }
  if (std::string_view(local.sun_path) != path_) {
    ::close(listen_fd_);
    throw std::runtime_error("control socket: the handed-over socket is bound to " +
                             std::string(local.sun_path) + ", the configuration says " + path_);
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    ::close(listen_fd_);
    throw std::runtime_error("control socket: eventfd(): " + Errno());
  }
  thread_ = std::thread([this] { Serve(); });
}

int ControlServer::Release() noexcept {
  if (!released_) {
    released_ = true;
    const std::uint64_t one = 1;
    if (::write(stop_fd_, &one, sizeof one) < 0) ::shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
  }
  return listen_fd_;
}

ControlServer::~ControlServer() {
  const std::uint64_t one = 1;
  if (!released_ && ::write(stop_fd_, &one, sizeof one) < 0) {
    // Cannot happen with a fresh eventfd; the join below would then hang, so
    // shut the listening socket down as a second wake-up.
    ::shutdown(listen_fd_, SHUT_RDWR);
  }
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(stop_fd_);
  if (!released_) ::unlink(path_.c_str());  // after a hand-over it is the new process's
}

void ControlServer::Serve() noexcept {
  // Clients are read side by side (non-blocking), each until its command
  // line is complete, it closes its writes, or its time is up: a client that
  // sends nothing or dribbles bytes holds one slot for at most
  // kClientTimeoutMs and never delays the others. Commands then run one at a
  // time on this thread.
  std::vector<Client> clients;
  clients.reserve(kMaxClients);
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign({{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}});
    const auto now = std::chrono::steady_clock::now();
    int timeout_ms = -1;
    for (const Client& c : clients) {
      fds.push_back({c.fd, POLLIN, 0});
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(c.deadline - now).count();
      const int ms = left < 0 ? 0 : static_cast<int>(left);
      timeout_ms = timeout_ms < 0 ? ms : std::min(timeout_ms, ms);
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("control socket: poll(): {}", Errno());
      break;
    }
    if (fds[1].revents != 0) break;
    if ((fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) break;
    // Reads first (fds[2 + i] belongs to clients[i]), then expiries, then
    // new connections, so the indexes still match while reading.
    const auto after_poll = std::chrono::steady_clock::now();
    std::size_t kept = 0;
    for (std::size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      const bool done = (fds[2 + i].revents != 0 && ReadSome(c)) || c.deadline <= after_poll;
      if (done) {
        Answer(c);
        ::close(c.fd);
      } else {
        if (kept != i) clients[kept] = std::move(c);
        ++kept;
      }
    }
    clients.resize(kept);
    if ((fds[0].revents & POLLIN) != 0) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;
      counters_.control_requests.Add();
      if (clients.size() >= kMaxClients) {
        ReplyError(fd, "busy: " + std::to_string(kMaxClients) +
                           " control connections are waiting for their command; try again");
        ::close(fd);
        continue;
      }
      ucred peer{};
      socklen_t peer_size = sizeof peer;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_size) != 0 ||
          (peer.uid != 0 && peer.uid != ::geteuid())) {
        ReplyError(fd, "permission denied");
        ::close(fd);
        continue;
      }
      clients.push_back({fd, {}, after_poll + std::chrono::milliseconds(kClientTimeoutMs), false});
    }
  }
  for (const Client& c : clients) ::close(c.fd);
}

bool ControlServer::ReadSome(Client& c) noexcept {
  char buffer[kMaxRequest + 1];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n <= 0) {  // end of its writes (or a reset): the command is what came
      c.ended = true;
      return true;
    }
    // Bounded: nothing past kMaxRequest + 1 bytes is kept (the size is at
    // most kMaxRequest here, or the last call would have returned true).
    const std::size_t room = kMaxRequest + 1 - c.request.size();
    c.request.append(buffer, std::min(static_cast<std::size_t>(n), room));
    if (c.request.find('\n') != std::string::npos || c.request.size() > kMaxRequest) return true;
  }
}

void ControlServer::ReplyError(int client, std::string_view why) noexcept {
  counters_.control_errors.Add();
  Reply(client, "error: " + std::string(why) + "\n");
}

void ControlServer::Reply(int client, std::string_view reply) noexcept {
  // Blocking from here, bounded by the send timeout: a client that does not
  // read a reply larger than its socket buffer costs at most that long.
  ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) & ~O_NONBLOCK);
  SetTimeouts(client, kClientTimeoutMs);
  WriteAll(client, reply);
}

void ControlServer::Answer(Client& c) noexcept {
  const std::string& request = c.request;
  const std::size_t newline = request.find('\n');
  if (request.size() > kMaxRequest && (newline == std::string::npos || newline > kMaxRequest)) {
    ReplyError(c.fd, "command longer than " + std::to_string(kMaxRequest) + " bytes");
    return;
  }
  if (newline == std::string::npos && !c.ended) {
    ReplyError(c.fd, "no complete command within " + std::to_string(kClientTimeoutMs / 1000) + " s");
    return;
  }
  const std::string_view command = Trim(std::string_view(request).substr(0, newline));
  if (!Printable(command)) {
    ReplyError(c.fd, "command contains non-printable bytes");
    return;
  }
  std::string reply;
  try {
    reply = handler_(command);
  } catch (const std::exception& e) {
    ReplyError(c.fd, e.what());
    return;
  }
  if (!reply.starts_with("ok")) counters_.control_errors.Add();
  Reply(c.fd, reply);
}

std::unique_ptr<ControlServer> StartControlServer(const std::string& path,
                                                  ControlServer::Handler handler,
                                                  metrics::ServiceCounters& counters,
                                                  int inherited_fd) {
  if (inherited_fd >= 0) {
    try {
      auto server = std::make_unique<ControlServer>(path, inherited_fd, handler, counters);
      spdlog::info("control socket {} (taken over from the old process)", path);
      return server;
    } catch (const std::exception& e) {
      spdlog::warn("{}; binding it afresh", e.what());
    }
  }
  try {
    auto server = std::make_unique<ControlServer>(path, std::move(handler), counters);
    spdlog::info("control socket {} (verdictd ctl reload|status|config)", path);
    return server;
  } catch (const std::exception& e) {
    spdlog::error("{}; running without the control socket (SIGHUP still reloads)", e.what());
    return nullptr;
  }
}

std::string WorkerCountersStatus(std::span<const QueueCountersRef> queues) {
  std::uint64_t packets = 0;
  std::array<std::uint64_t, metrics::kVerdictLabels.size()> verdicts{};
  std::string names;
  for (const QueueCountersRef& queue : queues) {
    packets += queue.counters->packets.value();
    for (std::size_t k = 0; k < verdicts.size(); ++k) {
      verdicts[k] += queue.counters->verdicts[k].value();
    }
    names += (names.empty() ? "" : ",") + std::to_string(queue.queue);
  }
  std::string text = "workers " + std::to_string(queues.size()) + "\n";
  text += "queues " + (names.empty() ? std::string("none") : names) + "\n";
  text += "packets " + std::to_string(packets) + "\n";
  for (std::size_t k = 0; k < verdicts.size(); ++k) {
    text += std::string("verdicts_") + metrics::kVerdictLabels[k] + " " +
            std::to_string(verdicts[k]) + "\n";
  }
  return text;
}

ControlServer::Handler MakeControlHandler(Reloader& reloader, metrics::ServiceCounters& counters,
                                          std::function<std::string()> extra_status,
                                          ExtHandler ext, DaemonHandler daemon) {
  return [&reloader, &counters, extra_status, ext,
          daemon](std::string_view line) -> std::string {
    // Parsed once, before anything runs: what did not parse gets its reason.
    const ControlParse parse = ParseControlCommand(line);
    const ControlCommand& command = parse.command;
    if (parse.recognised && command.verb == ControlVerb::kExt && !ext) {
      return "error: this verdictd has no extension host\n";
    }
    const bool daemon_verb =
        command.verb == ControlVerb::kTop || command.verb == ControlVerb::kUpgrade;
    if (!parse.ok() || (parse.recognised && daemon_verb && !daemon)) {
      // Without the daemon's part (tests), top and upgrade are unknown here.
      return "error: " + (parse.ok() ? UnknownCommand(line) : parse.error) + "\n";
    }
    switch (command.verb) {
      case ControlVerb::kExt:
        return ext(command.ext);
      case ControlVerb::kTop:
      case ControlVerb::kUpgrade:
        return daemon(command);
      case ControlVerb::kReload: {
        const ReloadResult result = reloader.Reload("control socket");
        return (result.applied ? "ok reloaded: " : "error: reload failed: ") + result.message +
               "\n";
      }
      case ControlVerb::kConfig:
        return "ok\n" + config::ToToml(reloader.running());
      case ControlVerb::kStatus:
        break;
    }
    const config::Config running = reloader.running();
    std::string text = "ok\n";
    text += "config_file " +
            (reloader.source().file.empty() ? std::string("(embedded defaults)")
                                            : reloader.source().file) +
            "\n";
    text += "reloads " + std::to_string(counters.reloads.value()) + "\n";
    text += "reload_failures " + std::to_string(counters.reload_failures.value()) + "\n";
    text += "control_requests " + std::to_string(counters.control_requests.value()) + "\n";
    text += "generation " + std::to_string(reloader.generation()) + "\n";
    text += "default_verdict " + config::VerdictSettingText(running.verdict.default_verdict) +
            "\n";
    // One line: the errors of a failed reload joined with " | ".
    std::string last;
    for (char c : reloader.last_result()) {
      if (c == '\n') {
        last += " |";
      } else {
        last += c;
      }
    }
    if (last.size() > 400) last = last.substr(0, 400) + " ...";
    text += "last_reload " + last + "\n";
    if (extra_status) text += extra_status();
    return text;
  };
}

int SendControlCommand(const std::string& socket_path, std::string_view command, std::ostream& out,
                       std::ostream& err) {
  int fd = -1;
  try {
    fd = Connect(socket_path);
  } catch (const std::exception& e) {
    err << "verdictd ctl: " << e.what() << "\n";
    return 1;
  }
  if (fd < 0) {
    err << "verdictd ctl: cannot connect to " << socket_path << ": " << Errno()
        << " (is verdictd running with [control] enabled? are you root?)\n";
    return 1;
  }
  // Generous: a reload builds a policy (rules) before it answers.
  SetTimeouts(fd, 30000);
  std::string request(command);
  request += '\n';
  if (!WriteAll(fd, request)) {
    err << "verdictd ctl: cannot send to " << socket_path << ": " << Errno() << "\n";
    ::close(fd);
    return 1;
  }
  ::shutdown(fd, SHUT_WR);
  std::string reply;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (reply.empty()) {
    err << "verdictd ctl: no reply from " << socket_path << "\n";
    return 1;
  }
  out << reply;
  return reply.starts_with("ok") ? 0 : 1;
}

}  // namespace verdictd::service
