#include "verdictd/metrics/metrics_server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <cerrno>
#include <cstring>
#include <utility>

#include <prometheus/exposer.h>

#include "verdictd/metrics/collectors.h"

namespace verdictd::metrics {
namespace {

struct HostPort {
  std::string host;
  std::string port;
};

// "127.0.0.1:9470", "[::1]:9470", ":9470" (all addresses) -> host, port.
bool SplitListen(const std::string& listen, HostPort& out) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) return false;
  out.port = listen.substr(colon + 1);
  if (!std::all_of(out.port.begin(), out.port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      out.port.size() > 5 || std::stoul(out.port) > 65535) {
    return false;
  }
  out.host = listen.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  return true;
}

// Why civetweb could not listen: bind a socket of our own to the same
// address and report its errno (civetweb only says "null context").
std::string DiagnoseBind(const HostPort& hp) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints, &result);
  if (rc != 0) return std::string("cannot resolve the address (") + gai_strerror(rc) + ")";
  std::string reason = "the HTTP server did not start";
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const int bound = bind(fd, ai->ai_addr, ai->ai_addrlen);
    const int error = errno;
    close(fd);
    if (bound != 0) {
      reason = error == EADDRINUSE ? "address already in use (another verdictd or another program holds the port)"
                                   : std::strerror(error);
      break;
    }
  }
  freeaddrinfo(result);
  return reason;
}

// Opens and closes one TCP connection to host:port (any address: loopback).
void Knock(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
  const bool any = host.empty() || host == "0.0.0.0" || host == "::";
  addrinfo* result = nullptr;
  if (getaddrinfo(any ? "127.0.0.1" : host.c_str(), std::to_string(port).c_str(), &hints, &result) != 0) return;
  const int fd = socket(result->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd >= 0) {
    connect(fd, result->ai_addr, result->ai_addrlen);  // non-blocking: the SYN is enough
    close(fd);
  }
  freeaddrinfo(result);
}

}  // namespace

MetricsServer::MetricsServer(const std::string& listen) : listen_(listen) {
  const std::string what_to_do =
      "set [metrics] listen to a free address:port, or [metrics] enabled = false";
  HostPort hp;
  if (!SplitListen(listen, hp)) {
    throw MetricsError("metrics: listen address '" + listen + "' is not address:port (e.g. 127.0.0.1:9470); " +
                       what_to_do);
  }
  try {
    // One thread is plenty for a scrape every few seconds; a second lets a
    // slow client not block Prometheus.
    exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception&) {
    throw MetricsError("metrics: cannot listen on " + listen + ": " + DiagnoseBind(hp) + "; " + what_to_do);
  }
  AddCollectable(std::make_shared<ProcessCollector>());
}

MetricsServer::~MetricsServer() {
  // civetweb's master thread polls its listening socket with a 2 s timeout
  // and only then sees the stop flag, so a plain stop takes up to 2 s (every
  // daemon exit, every test). A connection wakes the poll: knock on our own
  // port until the server is gone.
  const int port_number = port();
  std::atomic<bool> stopped{false};
  std::thread knocker;
  if (port_number > 0) {
    knocker = std::thread([&] {
      HostPort hp;
      SplitListen(listen_, hp);
      while (!stopped.load()) {
        Knock(hp.host, port_number);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  exposer_.reset();
  stopped = true;
  if (knocker.joinable()) knocker.join();
}

void MetricsServer::AddCollectable(std::shared_ptr<prometheus::Collectable> collectable) {
  std::lock_guard lock(mutex_);
  exposer_->RegisterCollectable(collectable);
  collectables_.push_back(std::move(collectable));
}

void MetricsServer::RemoveCollectable(const std::shared_ptr<prometheus::Collectable>& collectable) {
  std::lock_guard lock(mutex_);
  exposer_->RemoveCollectable(collectable);
  std::erase(collectables_, collectable);
}

int MetricsServer::port() const {
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace verdictd::metrics
