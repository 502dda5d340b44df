#include "verdictd/service/handover.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace verdictd::service {

namespace {

constexpr std::size_t kMaxMessage = 64 * 1024;
constexpr std::size_t kMaxFds = 250;  // SCM_MAX_FD is 253

std::string Errno() { return std::strerror(errno); }

std::string QueueList(const std::vector<std::uint16_t>& queues) {
  std::string text;
  for (std::size_t i = 0; i < queues.size(); ++i) {
    if (i > 0) text += ",";
    text += std::to_string(queues[i]);
  }
  return text;
}

// One message (SOCK_SEQPACKET keeps them whole) and the descriptors that came
// with it. Returns false on end of file; throws on timeout or error.
bool ReadMessage(int socket, int timeout_ms, std::string& text, std::vector<int>* fds) {
  pollfd p{socket, POLLIN, 0};
  for (;;) {
    const int n = ::poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("hand-over socket: poll(): " + Errno());
    if (n == 0) {
      throw std::runtime_error("no answer on the hand-over socket within " +
                               std::to_string(timeout_ms) + " ms");
    }
    break;
  }
  std::vector<char> buffer(kMaxMessage);
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds));
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  // ECONNRESET: the peer ended with our message unread. The error comes
  // first (and is cleared by it); what the peer wrote before may follow.
  if (n < 0 && errno == ECONNRESET) {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) return false;
  }
  if (n < 0) throw std::runtime_error("hand-over socket: recvmsg(): " + Errno());
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (fds != nullptr) {
        fds->push_back(fd);
      } else {
        ::close(fd);
      }
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    throw std::runtime_error("hand-over socket: descriptors were cut off (MSG_CTRUNC)");
  }
  if (n == 0) return false;
  text.assign(buffer.data(), static_cast<std::size_t>(n));
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return true;
}

std::string ExitDescription(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return "its status is unknown (" + Errno() + ")";
  if (WIFEXITED(status)) return "it exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("it was killed by ") + strsignal(WTERMSIG(status));
  return "it stopped";
}

}  // namespace

std::string EncodeManifest(const HandOverManifest& manifest) {
  std::string text = "verdictd-handover " + std::to_string(kHandOverVersion) + "\n";
  for (const HandedQueue& q : manifest.queues) {
    text += "queue " + std::to_string(q.queue) + " portid " + std::to_string(q.portid) +
            " flags " + std::to_string(q.flags) + " conntrack " +
            (q.conntrack_supported ? "1" : "0") + "\n";
  }
  if (manifest.control_fd >= 0) text += "control\n";
  text += "end\n";
  return text;
}

HandOverManifest DecodeManifest(std::string_view text, const std::vector<int>& fds) {
  std::istringstream in{std::string(text)};
  std::string line;
  HandOverManifest manifest;
  if (!std::getline(in, line) ||
      line != "verdictd-handover " + std::to_string(kHandOverVersion)) {
    throw std::runtime_error("hand-over manifest: expected \"verdictd-handover " +
                             std::to_string(kHandOverVersion) + "\", found \"" + line + "\"");
  }
  std::size_t next_fd = 0;
  bool ended = false;
  while (std::getline(in, line)) {
    if (line == "end") {
      ended = true;
      break;
    }
    if (next_fd >= fds.size()) {
      throw std::runtime_error("hand-over manifest: more entries than the " +
                               std::to_string(fds.size()) + " descriptor(s) received");
    }
    const int fd = fds[next_fd++];
    if (line == "control") {
      manifest.control_fd = fd;
      continue;
    }
    std::istringstream words(line);
    std::string w1, w3, w5, w7;
    unsigned long queue = 0, portid = 0, flags = 0;
    int conntrack = 0;
    if (!(words >> w1 >> queue >> w3 >> portid >> w5 >> flags >> w7 >> conntrack) ||
        w1 != "queue" || w3 != "portid" || w5 != "flags" || w7 != "conntrack" || queue > 65535) {
      throw std::runtime_error("hand-over manifest: cannot read the line \"" + line + "\"");
    }
    manifest.queues.push_back(HandedQueue{static_cast<std::uint16_t>(queue), fd,
                                          static_cast<std::uint32_t>(portid),
                                          static_cast<std::uint32_t>(flags), conntrack != 0});
  }
  if (!ended) throw std::runtime_error("hand-over manifest: no \"end\" line");
  if (next_fd != fds.size()) {
    throw std::runtime_error("hand-over manifest: " + std::to_string(fds.size()) +
                             " descriptors received for " + std::to_string(next_fd) + " entries");
  }
  return manifest;
}

std::string StartSuccessor(const std::string& binary, const std::vector<std::string>& argv,
                           const std::vector<std::uint16_t>& queues, int timeout_ms,
                           Successor& out) {
  if (::access(binary.c_str(), X_OK) != 0) {
    return "cannot run the new binary " + binary + ": " + Errno();
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return "cannot create the hand-over socket pair: " + Errno();
  }
  const std::string hello = "verdictd-handover " + std::to_string(kHandOverVersion) +
                            " queues " + QueueList(queues) + "\n";
  if (::send(pair[0], hello.data(), hello.size(), MSG_NOSIGNAL) < 0) {
    const std::string why = Errno();
    ::close(pair[0]);
    ::close(pair[1]);
    return "cannot write to the hand-over socket: " + why;
  }
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::string env_entry = std::string(kHandOverEnv) + "=" + std::to_string(pair[1]);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kHandOverEnv, std::strlen(kHandOverEnv)) == 0) continue;
    // systemd's watchdog names this process; without WATCHDOG_PID it
    // applies to whichever process is the service's main one (the new one
    // after MAINPID=).
    if (std::strncmp(*e, "WATCHDOG_PID=", 13) == 0) continue;
    env_strings.emplace_back(*e);
  }
  env_strings.push_back(env_entry);
  std::vector<char*> env;
  for (std::string& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);

  const pid_t pid = ::fork();
  if (pid < 0) {
    const std::string why = Errno();
    ::close(pair[0]);
    ::close(pair[1]);
    return "cannot start the new process: fork(): " + why;
  }
  if (pid == 0) {
    ::fcntl(pair[1], F_SETFD, 0);  // the child keeps its end across exec
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::execve(binary.c_str(), args.data(), env.data());
    ::_exit(127);
  }
  ::close(pair[1]);
  std::string reply;
  std::string why;
  try {
    if (!ReadMessage(pair[0], timeout_ms, reply, nullptr)) {
      why = "the new process " + std::to_string(pid) + " ended before it was ready: " +
            ExitDescription(pid) + " (its log says why)";
    } else if (reply == "ready") {
      out.pid = pid;
      out.socket = pair[0];
      return "";
    } else if (reply.starts_with("error ")) {
      why = "the new process refused to take over: " + reply.substr(6);
      ::kill(pid, SIGKILL);
      ExitDescription(pid);
    } else {
      why = "the new process said \"" + reply + "\", not ready";
      ::kill(pid, SIGKILL);
      ExitDescription(pid);
    }
  } catch (const std::exception& e) {
    why = std::string("the new process is not ready: ") + e.what();
    ::kill(pid, SIGKILL);
    ExitDescription(pid);
  }
  ::close(pair[0]);
  return why;
}

std::string SendManifest(int socket, const HandOverManifest& manifest) {
  std::vector<int> fds;
  for (const HandedQueue& q : manifest.queues) fds.push_back(q.fd);
  if (manifest.control_fd >= 0) fds.push_back(manifest.control_fd);
  if (fds.size() > kMaxFds) return "too many descriptors to hand over";
  std::string text = EncodeManifest(manifest);
  // cmsghdr alignment: a vector of them, not of char.
  std::vector<cmsghdr> control(CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())) /
                                   sizeof(cmsghdr) + 1);
  iovec iov{text.data(), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    // The buffer is CMSG_SPACE-sized: the first header is its start.
    auto* c = reinterpret_cast<cmsghdr*>(control.data());
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return "cannot send the sockets to the new process: " + Errno();
  return "";
}

std::string AwaitRunning(int socket, int timeout_ms) {
  try {
    std::string reply;
    if (!ReadMessage(socket, timeout_ms, reply, nullptr)) {
      return "the new process ended before it adopted the sockets";
    }
    if (reply.starts_with("running")) return "";
    return "the new process said: " + reply;
  } catch (const std::exception& e) {
    return e.what();
  }
}

int InheritedHandOverSocket() {
  const char* value = std::getenv(kHandOverEnv);
  if (value == nullptr) return -1;
  int fd = -1;
  const std::string_view text(value);
  if (std::from_chars(text.data(), text.data() + text.size(), fd).ec != std::errc() || fd < 0) {
    ::unsetenv(kHandOverEnv);
    return -1;
  }
  ::unsetenv(kHandOverEnv);  // not for the processes this one starts
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

void CheckHello(int socket, const std::vector<std::uint16_t>& queues, int timeout_ms) {
  std::string hello;
  if (!ReadMessage(socket, timeout_ms, hello, nullptr)) {
    throw std::runtime_error("upgrade: the old process closed the hand-over socket");
  }
  const std::string expected_prefix = "verdictd-handover " + std::to_string(kHandOverVersion) + " ";
  if (!hello.starts_with(expected_prefix)) {
    throw std::runtime_error("upgrade: the old process speaks \"" + hello +
                             "\", this one hand-over version " +
                             std::to_string(kHandOverVersion));
  }
  const std::string mine = "queues " + QueueList(queues);
  const std::string theirs = hello.substr(expected_prefix.size());
  if (theirs != mine) {
    throw std::runtime_error("upgrade: the configuration's queues (" + mine +
                             ") differ from the running ones (" + theirs +
                             "); upgrade with the running [[queues]], then reload the change");
  }
}

void SendLine(int socket, std::string_view line) noexcept {
  (void)::send(socket, line.data(), line.size(), MSG_NOSIGNAL);
}

HandOverManifest ReceiveManifest(int socket, int timeout_ms) {
  std::string text;
  std::vector<int> fds;
  bool got = false;
  try {
    got = ReadMessage(socket, timeout_ms, text, &fds);
  } catch (...) {
    for (int fd : fds) ::close(fd);
    throw;
  }
  if (!got) throw std::runtime_error("upgrade: the old process closed the hand-over socket");
  try {
    return DecodeManifest(text, fds);
  } catch (...) {
    for (int fd : fds) ::close(fd);
    throw;
  }
}

std::string FdStoreName(const HandedQueue& queue) {
  return "queue-" + std::to_string(queue.queue) + "-" + std::to_string(queue.portid) + "-" +
         std::to_string(queue.flags) + "-" + (queue.conntrack_supported ? "1" : "0");
}

HandOverManifest ListenFdsManifest(std::string& notes) {
  HandOverManifest manifest;
  char** names = nullptr;
  const int n = sd_listen_fds_with_names(1, &names);
  if (n <= 0) return manifest;
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    const std::string name = names != nullptr && names[i] != nullptr ? names[i] : "";
    unsigned long queue = 0, portid = 0, flags = 0, conntrack = 0;
    if (name == kControlFdName && manifest.control_fd < 0) {
      manifest.control_fd = fd;
    } else if (std::sscanf(name.c_str(), "queue-%lu-%lu-%lu-%lu", &queue, &portid, &flags,
                           &conntrack) == 4 &&
               queue <= 65535) {
      manifest.queues.push_back(HandedQueue{static_cast<std::uint16_t>(queue), fd,
                                            static_cast<std::uint32_t>(portid),
                                            static_cast<std::uint32_t>(flags), conntrack != 0});
    } else {
      notes += "closed the stored descriptor \"" + name + "\" (not one of this version's); ";
      ::close(fd);
    }
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return manifest;
}

int StoreFds(const HandOverManifest& manifest) {
  int stored = 0;
  auto store = [&stored](int fd, const std::string& name) {
    const std::string message = "FDSTORE=1\nFDNAME=" + name;
    if (sd_pid_notify_with_fds(0, 0, message.c_str(), &fd, 1) > 0) ++stored;
  };
  for (const HandedQueue& q : manifest.queues) store(q.fd, FdStoreName(q));
  if (manifest.control_fd >= 0) store(manifest.control_fd, kControlFdName);
  return stored;
}

}  // namespace verdictd::service
