// Zero-loss upgrade: a running verdictd hands its bound queue sockets and its
// listening control socket to a new process over a unix socket pair
// (SCM_RIGHTS). The queues stay bound throughout, so the kernel keeps
// queueing and nothing waiting is lost.
//
// The exchange, one line each way unless said otherwise (version 1):
//   old -> new   "verdictd-handover 1 queues 0,1\n"          at once
//   new -> old   "ready\n" | "error <why>\n"                 config loaded
//   old -> new   the manifest, with the descriptors attached  (see below)
//   new -> old   "running pid <N>\n" | "error <why>\n"        sockets adopted
// The manifest: "verdictd-handover 1\n", one line per descriptor in the
// order attached, "queue Q portid P flags F conntrack 0|1\n" or
// "control\n", then "end\n".
//
// The old process finds the new one through VERDICTD_HANDOVER_FD (the
// inherited end of the pair). Control-plane code: may allocate and throw.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace verdictd::service {

inline constexpr int kHandOverVersion = 1;
inline constexpr const char* kHandOverEnv = "VERDICTD_HANDOVER_FD";

// One queue socket handed over: its descriptor and what its bind found.
struct HandedQueue {
  std::uint16_t queue = 0;
  int fd = -1;
  std::uint32_t portid = 0;
  std::uint32_t flags = 0;
  bool conntrack_supported = false;
};

struct HandOverManifest {
  std::vector<HandedQueue> queues;
  int control_fd = -1;  // the listening control socket; -1: none
};

std::string EncodeManifest(const HandOverManifest& manifest);
// Parses `text` and assigns `fds` (in attachment order). Throws
// std::runtime_error saying what is wrong.
HandOverManifest DecodeManifest(std::string_view text, const std::vector<int>& fds);

// The old side. Starts `binary` with `argv` (argv[0] as given) and the
// hand-over socket, and waits up to `timeout_ms` for its "ready". Returns
// "" and fills `pid`/`socket`, or why the new process cannot take over (it
// has been reaped then).
struct Successor {
  pid_t pid = -1;
  int socket = -1;
};
std::string StartSuccessor(const std::string& binary, const std::vector<std::string>& argv,
                           const std::vector<std::uint16_t>& queues, int timeout_ms,
                           Successor& out);
// Sends the manifest with its descriptors. Returns "" or the error.
std::string SendManifest(int socket, const HandOverManifest& manifest);
// Waits for "running pid N" after the manifest. Returns "" or the error.
std::string AwaitRunning(int socket, int timeout_ms);

// The new side: the inherited socket, or -1 when not started by an upgrade.
int InheritedHandOverSocket();
// Reads the old process's first line; throws std::runtime_error unless it
// is this version and lists exactly `queues`.
void CheckHello(int socket, const std::vector<std::uint16_t>& queues, int timeout_ms);
// One line to the old process ("ready", "error <why>", "running pid N").
void SendLine(int socket, std::string_view line) noexcept;
// Waits for the manifest and its descriptors; throws std::runtime_error.
HandOverManifest ReceiveManifest(int socket, int timeout_ms);

// systemd's file descriptor store: the same sockets, kept by the service
// manager across `systemctl restart`. Each is stored with FDSTORE=1 and a
// name saying what it is (FdStoreName), and comes back through LISTEN_FDS /
// LISTEN_FDNAMES (sd_listen_fds_with_names).
std::string FdStoreName(const HandedQueue& queue);  // "queue-Q-PORTID-FLAGS-CONNTRACK"
inline constexpr const char* kControlFdName = "control";
// The descriptors systemd passed (LISTEN_FDS, unset afterwards) as a
// manifest; descriptors with names this version does not know are closed
// (logged in `notes`). Empty when there are none.
HandOverManifest ListenFdsManifest(std::string& notes);
// Sends FDSTORE=1 for every socket of `manifest` (sd_pid_notify_with_fds).
// Returns how many the manager accepted to hear of (0 without NOTIFY_SOCKET).
int StoreFds(const HandOverManifest& manifest);

}  // namespace verdictd::service
