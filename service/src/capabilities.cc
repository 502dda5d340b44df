#include "verdictd/service/capabilities.h"

#include <cap-ng.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>

#include <stdexcept>

namespace verdictd::service {

bool HasNetAdmin() {
  capng_get_caps_process();
  return capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_ADMIN) != 0;
}

void RequireNetAdmin() {
  if (!HasNetAdmin()) {
    throw std::runtime_error(
        "missing CAP_NET_ADMIN, which binding NFQUEUE queues needs: run as root, or grant it "
        "(systemd AmbientCapabilities=CAP_NET_ADMIN, or setcap cap_net_admin+ep on the binary)");
  }
}

namespace {

// True when CAP_NET_ADMIN is effective and nothing else is permitted.
bool HoldsOnlyNetAdmin() {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (cap != CAP_NET_ADMIN && capng_have_capability(CAPNG_PERMITTED, cap) != 0) return false;
  }
  return capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_ADMIN) != 0 &&
         capng_have_capability(CAPNG_PERMITTED, CAP_NET_ADMIN) != 0;
}

}  // namespace

void DropCapabilities(const std::string& user) {
  capng_get_caps_process();
  // Started with exactly CAP_NET_ADMIN (systemd AmbientCapabilities=, setpriv):
  // there is nothing to drop, so no capset(2), which the shipped unit forbids
  // (SystemCallFilter=~@privileged). Only the ambient copy goes, through prctl:
  // no program started from here inherits the capability.
  if (user.empty() && HoldsOnlyNetAdmin()) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
      throw std::runtime_error("cannot clear the ambient capabilities");
    }
    return;
  }
  // Changing the bounding set needs CAP_SETPCAP; without it (e.g. started by
  // systemd with only CAP_NET_ADMIN) the bounding set is already narrow.
  const bool can_bound = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP) != 0;
  capng_clear(CAPNG_SELECT_BOTH);
  capng_update(CAPNG_ADD,
               static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED |
                                         (can_bound ? CAPNG_BOUNDING_SET : 0)),
               CAP_NET_ADMIN);
  if (!user.empty()) {
    const passwd* entry = getpwnam(user.c_str());
    if (entry == nullptr) {
      throw std::runtime_error("process.user '" + user +
                               "' does not exist; create it or leave process.user empty");
    }
    const int rc = capng_change_id(static_cast<int>(entry->pw_uid), static_cast<int>(entry->pw_gid),
                                   static_cast<capng_flags_t>(
                                       CAPNG_DROP_SUPP_GRP | (can_bound ? CAPNG_CLEAR_BOUNDING : 0)));
    if (rc != 0) {
      throw std::runtime_error("cannot switch to user '" + user + "' keeping CAP_NET_ADMIN (" +
                               "capng_change_id " + std::to_string(rc) +
                               "); start as root or leave process.user empty");
    }
    return;
  }
  if (capng_apply(can_bound ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS) != 0) {
    throw std::runtime_error("cannot drop capabilities other than CAP_NET_ADMIN");
  }
}

}  // namespace verdictd::service
