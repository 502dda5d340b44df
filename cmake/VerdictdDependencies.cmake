# Every third-party library comes from Debian 12 packages (see .ci/packages).
# Packages that ship a CMake package configuration are found through it
# (CONFIG), with the lowest version verdictd is built and tested with (Debian
# 12's); the C libraries without one come through pkg-config. Only what a
# target links is looked for, and test-only packages only when tests are
# built.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBMNL REQUIRED IMPORTED_TARGET libmnl)              # queueio, service
pkg_check_modules(LIBNFQ REQUIRED IMPORTED_TARGET libnetfilter_queue)  # queueio, service
pkg_check_modules(LIBHS REQUIRED IMPORTED_TARGET libhs)                # rules
pkg_check_modules(LIBPCAP REQUIRED IMPORTED_TARGET libpcap)            # rules (replay)
pkg_check_modules(LIBCAPNG REQUIRED IMPORTED_TARGET libcap-ng)         # service
pkg_check_modules(LIBSYSTEMD REQUIRED IMPORTED_TARGET libsystemd)      # service (sd_notify)
find_package(Threads REQUIRED)
find_package(TBB 2021.8 REQUIRED CONFIG)            # extensions (asynchronous verdicts)
# prometheus-cpp 1.0.1 installs no version file, so no version can be asked.
find_package(prometheus-cpp REQUIRED CONFIG)        # metrics, rules, extensions
find_package(tomlplusplus 3.3 REQUIRED CONFIG)      # config
find_package(CLI11 2.1 REQUIRED CONFIG)             # service
# spdlog brings fmt (Debian builds it with the external fmt): verdictd uses
# fmt only through spdlog and does not look for it itself.
find_package(spdlog 1.10 REQUIRED CONFIG)           # service, extensions
if(VERDICTD_BUILD_TESTS)
  find_package(GTest 1.12 REQUIRED CONFIG)
  find_package(nlohmann_json 3.11 REQUIRED CONFIG)  # tests/metrics (the dashboard's JSON)
endif()
if(VERDICTD_BUILD_BENCH)
  find_package(benchmark 1.7 REQUIRED CONFIG)
endif()
