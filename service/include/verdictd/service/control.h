// The local control socket and its client (`verdictd ctl`).
//
// Protocol: a client connects to the unix stream socket, sends one command
// line (control_command.h: "reload", "status", ..., at most 256 bytes, ending in '\n' or
// the end of its writes), and reads the reply until the server closes. The
// reply's first line is "ok" or "error: <why>", optionally followed by
// details (for "ok", the rest of the first line may carry a summary).
//
// The socket is created with mode 0600 (only its owner, normally root, can
// connect) and peers whose uid is neither 0 nor ours are refused. One server
// thread reads up to 32 clients at once, each for at most one second in all:
// a client that sends nothing, dribbles bytes or never ends its line gets
// "error: no complete command within 1 s" and is closed, and never delays
// the others; a 33rd gets "error: busy: ..." at once. Past 256 bytes without
// a newline the reply is "error: command longer than 256 bytes" and the rest
// is not read. Commands run one at a time. Malformed input gets an error
// reply; it never stops the server.
//
// Control-plane code: constructors throw std::runtime_error with a one-line
// message; nothing here runs on the packet path.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "verdictd/metrics/service_counters.h"
#include "verdictd/metrics/worker_counters.h"
#include "verdictd/service/control_command.h"
#include "verdictd/service/service.h"

namespace verdictd::service {

class Reloader;

class ControlServer {
 public:
  // Returns the whole reply for one command (first line "ok..." or "error: ...").
  using Handler = std::function<std::string(std::string_view command)>;

  // Binds `path` (replacing a stale socket file, refusing one a live process
  // serves) and starts serving. counters.control_requests/control_errors are
  // written only by the server thread.
  ControlServer(std::string path, Handler handler, metrics::ServiceCounters& counters);
  // Upgrade: serves `listen_fd`, the listening socket the old process
  // handed over (bound to `path`); checks it is a listening unix stream
  // socket. Takes ownership of `listen_fd`, even on throw.
  ControlServer(std::string path, int listen_fd, Handler handler,
                metrics::ServiceCounters& counters);
  ~ControlServer();  // stops the thread and removes the socket file

  // Upgrade, the old side: stops serving (after the reply being written)
  // and returns the listening socket, which stays open until this server is
  // destroyed; the socket file is then left in place for the new process.
  int Release() noexcept;
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }
  int listen_fd() const { return listen_fd_; }

 private:
  struct Client {
    int fd;
    std::string request;  // at most kMaxRequest + 1 bytes
    std::chrono::steady_clock::time_point deadline;
    bool ended;  // the client closed its writing side
  };
  void Serve() noexcept;
  bool ReadSome(Client& client) noexcept;  // true: the command is complete (or cannot be)
  void Answer(Client& client) noexcept;
  void Reply(int client, std::string_view reply) noexcept;
  void ReplyError(int client, std::string_view why) noexcept;

  std::string path_;
  Handler handler_;
  metrics::ServiceCounters& counters_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: wakes the thread to stop
  bool released_ = false;
  std::thread thread_;
};

// The daemon's way to start the server: a control socket that cannot be set
// up (path held by another verdictd, directory not writable after switching
// user) is logged as an error and the daemon runs on without it (SIGHUP still
// reloads); returns nullptr then. Packets matter more than the control plane.
std::unique_ptr<ControlServer> StartControlServer(const std::string& path,
                                                  ControlServer::Handler handler,
                                                  metrics::ServiceCounters& counters,
                                                  int inherited_fd = -1);

// Runs `ctl ext ...` (already parsed) and returns the reply.
using ExtHandler = std::function<std::string(const extensions::ExtCommand&)>;
// Runs the commands only the daemon's main can (top, upgrade).
using DaemonHandler = std::function<std::string(const ControlCommand&)>;

// The commands of a running daemon: each line is parsed first
// (ParseControlCommand; a refusal is its reason), then reload (through
// `reloader`), status and config run here, ext through `ext`, top and
// upgrade through `daemon`. `extra_status` (optional) appends lines to the
// status reply, e.g. the workers' counters from WorkerCountersStatus().
// Without `ext`, any ext request gets "no extension host"; without
// `daemon`, top and upgrade are unknown commands.
ControlServer::Handler MakeControlHandler(Reloader& reloader, metrics::ServiceCounters& counters,
                                          std::function<std::string()> extra_status = {},
                                          ExtHandler ext = {}, DaemonHandler daemon = {});

// Status lines of the running queues: "workers N", "queues 0,1", then
// counters summed over all workers: "packets N", "verdicts_accept N", ...
std::string WorkerCountersStatus(std::span<const QueueCountersRef> queues);

// Client side: sends `command` to the server at `socket_path` and copies the
// reply to `out` (errors about the connection itself go to `err`). Returns the
// exit code: 0 when the reply starts with "ok", 1 otherwise.
int SendControlCommand(const std::string& socket_path, std::string_view command, std::ostream& out,
                       std::ostream& err);

}  // namespace verdictd::service
