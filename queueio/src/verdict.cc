#include "verdictd/queueio/verdict.h"

namespace verdictd::queueio {

const char* VerdictKindName(VerdictKind kind) noexcept {
  switch (kind) {
    case VerdictKind::kAccept:
      return "accept";
    case VerdictKind::kDrop:
      return "drop";
    case VerdictKind::kRepeat:
      return "repeat";
    case VerdictKind::kQueue:
      return "queue";
    case VerdictKind::kStop:
      return "stop";
  }
  return "unknown";
}

}  // namespace verdictd::queueio
