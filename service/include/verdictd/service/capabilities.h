// Privileges of the daemon: it needs CAP_NET_ADMIN (binding queues, sending
// verdicts, SO_RCVBUFFORCE) and nothing else.
//
// Startup only; throws std::runtime_error with a one-line message.
// Capabilities are per thread on Linux: call DropCapabilities() before any
// other thread starts, or those threads keep the full set.
#pragma once

#include <string>

namespace verdictd::service {

// True when the effective set holds CAP_NET_ADMIN.
bool HasNetAdmin();

// Throws the one-line "missing CAP_NET_ADMIN" error unless HasNetAdmin().
void RequireNetAdmin();

// Drops every capability except CAP_NET_ADMIN (also from the bounding set
// when allowed). With a non-empty `user`, switches to that user and its
// primary group (supplementary groups dropped), still keeping CAP_NET_ADMIN.
void DropCapabilities(const std::string& user);

}  // namespace verdictd::service
