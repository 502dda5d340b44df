#include "verdictd/extensions/loaded_extension.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "param_table.h"

namespace verdictd::extensions {
namespace {

constexpr std::size_t kErrorBytes = 512;

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  throw LoadError("extension " + path + ": " + what);
}

std::string Mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

void CheckOwnership(const std::string& path, const struct stat& st, unsigned owner,
                    const char* what) {
  if (st.st_uid != owner) {
    Fail(path, std::string(what) + " is owned by uid " + std::to_string(st.st_uid) +
                   ", not " + (owner == 0 ? "root" : "uid " + std::to_string(owner)) +
                   "; extensions load only from a root-owned directory (chown root)");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    Fail(path, std::string(what) + " is writable by group or others (mode " + Mode(st.st_mode) +
                   "); make it writable by its owner only (chmod go-w)");
  }
}

// Opens `file` in the directory after the ownership checks; returns the fd.
int OpenChecked(const LoadPolicy& policy, const std::string& file, std::string& path) {
  path = policy.directory + "/" + file;
  if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
    Fail(path, "the file must be a plain file name inside the extension directory");
  }
  struct stat dir {};
  if (::stat(policy.directory.c_str(), &dir) != 0) {
    Fail(path, "cannot read the extension directory " + policy.directory + ": " +
                   std::strerror(errno));
  }
  if (!S_ISDIR(dir.st_mode)) Fail(path, policy.directory + " is not a directory");
  CheckOwnership(path, dir, policy.owner_uid, ("the directory " + policy.directory).c_str());
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    Fail(path, errno == ELOOP ? std::string("is a symbolic link; link targets are not checked, "
                                            "copy the file instead")
                              : std::string("cannot open: ") + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    Fail(path, "is not a regular file");
  }
  try {
    CheckOwnership(path, st, policy.owner_uid, "the file");
  } catch (...) {
    ::close(fd);
    throw;
  }
  return fd;
}

// dlopen by path, after the checks: the directory is root-owned and not
// writable by others, so only root can replace the checked file in between.
// (Loading through /proc/self/fd/N would make glibc take a reused fd number
// for an object it already has open under that name.)
void* OpenLibrary(int fd, const std::string& path, const verdictd_extension_api_t*& api) {
  ::close(fd);
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = ::dlerror();
    Fail(path, std::string("dlopen failed: ") + (error != nullptr ? error : "unknown error"));
  }
  api = static_cast<const verdictd_extension_api_t*>(
      ::dlsym(handle, VERDICTD_EXTENSION_ENTRY_NAME));
  if (api == nullptr) {
    ::dlclose(handle);
    Fail(path, "has no entry symbol \"" VERDICTD_EXTENSION_ENTRY_NAME
               "\"; define it with VERDICTD_EXTENSION_DEFINE from <verdictd/extension.h>");
  }
  const auto version_text = [](std::uint32_t v) {
    return std::to_string(v >> 16) + "." + std::to_string(v & 0xffff);
  };
  std::string problem;
  if (VERDICTD_API_MAJOR_OF(api->api_version) != VERDICTD_EXTENSION_API_MAJOR) {
    problem = "was built for extension ABI " + version_text(api->api_version) +
              ", this verdictd speaks " + version_text(VERDICTD_EXTENSION_API_VERSION) +
              "; rebuild it against this verdictd's <verdictd/extension.h>";
  } else if (api->api_size < VERDICTD_EXTENSION_API_SIZE_1_0) {
    problem = "declares api_size " + std::to_string(api->api_size) + ", less than the " +
              std::to_string(VERDICTD_EXTENSION_API_SIZE_1_0) +
              " bytes of ABI 1.0; set api_size = sizeof(verdictd_extension_api_t)";
  } else if (api->name == nullptr || api->help == nullptr || api->usage == nullptr) {
    problem = "lacks its name, help or usage text";
  } else {
    std::string missing;
    if (api->load == nullptr) missing += " load";
    if (api->unload == nullptr) missing += " unload";
    if (api->instantiate == nullptr) missing += " instantiate";
    if (api->destroy == nullptr) missing += " destroy";
    if (api->process == nullptr) missing += " process";
    if (!missing.empty()) problem = "lacks required functions:" + missing;
  }
  if (problem.empty()) {
    if (std::string table = ParamTableProblem(ParamTable(*api)); !table.empty()) {
      problem = "declares a bad parameter table: " + table;
    }
  }
  if (!problem.empty()) {
    ::dlclose(handle);
    Fail(path, problem);
  }
  return handle;
}

std::string Call(int (*fn)(void*, char*, std::size_t), void* state) {
  if (fn == nullptr) return "";
  char error[kErrorBytes] = {};
  if (fn(state, error, sizeof error) == 0) return "";
  error[sizeof error - 1] = '\0';
  return error[0] != '\0' ? std::string(error) : std::string("failed (no reason given)");
}

}  // namespace

std::shared_ptr<LoadedExtension> LoadedExtension::Load(const LoadPolicy& policy,
                                                       const config::ExtensionEntry& entry,
                                                       const verdictd_host_api_t* host_api,
                                                       std::shared_ptr<ExtensionCounters> counters) {
  const std::string file = entry.file.empty() ? entry.name + ".so" : entry.file;
  std::string path;
  const int fd = OpenChecked(policy, file, path);
  const verdictd_extension_api_t* api = nullptr;
  void* handle = OpenLibrary(fd, path, api);
  if (entry.name != api->name) {
    const std::string found = api->name;
    ::dlclose(handle);
    Fail(path, "is the extension \"" + found + "\", not \"" + entry.name +
                   "\"; name the [[extensions]] entry after the extension");
  }
  std::shared_ptr<LoadedExtension> loaded(new LoadedExtension());
  loaded->handle_ = handle;
  loaded->api_ = api;
  loaded->entry_ = entry;
  loaded->path_ = path;
  loaded->counters_ = std::move(counters);
  loaded->host_.extension = loaded.get();
  loaded->set_group(entry.group);
  // The declared parameters are checked before any of the extension's code runs.
  if (std::string problem = ParametersAgainstTable(ParamTable(*api), entry.parameters);
      !problem.empty()) {
    loaded->api_ = nullptr;  // nothing to unload
    Fail(path, "(" + entry.name + ") refused: " + problem + "; see `verdictd ctl ext help " +
                   entry.name + "`");
  }
  char error[kErrorBytes] = {};
  void* state = nullptr;
  if (api->load(host_api, &loaded->host_, entry.parameters.c_str(), &state, error,
                sizeof error) != 0) {
    error[sizeof error - 1] = '\0';
    loaded->api_ = nullptr;  // nothing to unload
    Fail(path, "refused to load with parameters \"" + entry.parameters + "\": " +
                   (error[0] != '\0' ? std::string(error) : std::string("(no reason given)")) +
                   "; usage: " + api->usage);
  }
  loaded->state_ = state;
  if (loaded->counters_->counter_names.empty() && api->counter_names != nullptr) {
    for (std::uint32_t i = 0; i < api->counter_count && i < kMaxExtensionCounters; ++i) {
      loaded->counters_->counter_names.emplace_back(
          api->counter_names[i] != nullptr ? api->counter_names[i] : "");
    }
  }
  if (entry.started) {
    if (std::string problem = loaded->Start(); !problem.empty()) {
      Fail(path, "loaded, but start failed: " + problem);
    }
  }
  spdlog::info("extension {} {}.{}.{} loaded from {} (parameters \"{}\", group 0x{:x}, {})",
               entry.name, api->extension_version >> 16, (api->extension_version >> 8) & 0xff,
               api->extension_version & 0xff, path, entry.parameters, entry.group,
               entry.started ? "started" : "stopped");
  return loaded;
}

LoadedExtension::~LoadedExtension() {
  // Arena work may still run code of this object; it ends by itself.
  while (!arena_idle()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (api_ != nullptr) api_->unload(state_);
  if (handle_ != nullptr) ::dlclose(handle_);
  if (api_ != nullptr) spdlog::info("extension {} unloaded ({})", entry_.name, path_);
}

std::string LoadedExtension::Start() {
  std::string problem = Call(api_->start, state_);
  if (problem.empty()) gate_.fetch_or(kGateStarted, std::memory_order_release);
  return problem;
}

std::string LoadedExtension::Stop() {
  gate_.fetch_and(~kGateStarted, std::memory_order_release);
  return Call(api_->stop, state_);
}

void LoadedExtension::set_group(std::uint32_t mask) noexcept {
  std::uint64_t gate = gate_.load(std::memory_order_relaxed);
  while (!gate_.compare_exchange_weak(gate, (gate & kGateStarted) | mask, std::memory_order_relaxed)) {
  }
}

std::string LoadedExtension::Reset() { return Call(api_->reset, state_); }

std::string LoadedExtension::Info() const {
  if (api_->info == nullptr) return "";
  char buffer[4096] = {};
  api_->info(state_, buffer, sizeof buffer);
  buffer[sizeof buffer - 1] = '\0';
  return buffer;
}

std::string ExtensionHelp(const LoadPolicy& policy, const std::string& file) {
  std::string path;
  const int fd = OpenChecked(policy, file, path);
  const verdictd_extension_api_t* api = nullptr;
  void* handle = OpenLibrary(fd, path, api);
  std::string text = std::string(api->name) + " " + std::to_string(api->extension_version >> 16) +
                     "." + std::to_string((api->extension_version >> 8) & 0xff) + "." +
                     std::to_string(api->extension_version & 0xff) + ": " + api->help +
                     "\nusage: parameters = \"" + api->usage + "\"";
  if (const auto table = ParamTable(*api); !table.empty()) {
    text += "\nparameters:\n" + DescribeParamTable(table);
    if (text.back() == '\n') text.pop_back();
  }
  ::dlclose(handle);
  return text;
}

}  // namespace verdictd::extensions
