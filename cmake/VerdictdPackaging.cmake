# Debian packages made by CPack from the install rules (include last: it reads
# the install components the whole tree declared).
#
#   cmake --build build && (cd build && cpack -G DEB)
#
# gives build/verdictd_<version>_<arch>.deb (COMPONENT verdictd: daemon, unit,
# configuration, man pages, templates, docs) and, once some target installs
# into COMPONENT dev (headers, static libraries, .so links, pkg-config and
# CMake package files), verdictd-dev_<version>_<arch>.deb. An empty dev
# component is left out instead of producing an empty package.
#
# Versions come from project(): the same string as `verdictd --version` and
# verdictd_build_info.

set(CPACK_PACKAGE_NAME verdictd)
set(CPACK_PACKAGE_VENDOR "verdictd")
set(CPACK_PACKAGE_CONTACT "verdictd maintainers <dev@verdictd.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "multi-queue NFQUEUE verdict service")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://verdictd.invalid/")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Install into the staging tree with DESTDIR and the real prefix, as
# `DESTDIR=... cmake --install build --prefix /usr` does: the install rules
# put the configuration in /etc for that prefix (cmake/VerdictdInstall.cmake).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

get_cmake_property(_verdictd_components COMPONENTS)
set(CPACK_COMPONENTS_ALL verdictd)
if("dev" IN_LIST _verdictd_components)
  list(APPEND CPACK_COMPONENTS_ALL dev)
endif()
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_COMPONENT_VERDICTD_DESCRIPTION
    "multi-queue NFQUEUE verdict service
 verdictd gives verdicts to packets that firewall rules hand to userspace with
 the NFQUEUE target: one pinned worker per queue, batched receives and
 verdicts, ordered rules with content matching, live reload, Prometheus
 metrics. The package carries a hardened systemd unit (not enabled), a default
 configuration, nftables/iptables templates, Prometheus alert rules and a
 Grafana dashboard.")
set(CPACK_DEBIAN_VERDICTD_PACKAGE_NAME verdictd)
# Depends computed from the binary's shared libraries by dpkg-shlibdeps.
set(CPACK_DEBIAN_VERDICTD_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_VERDICTD_PACKAGE_RECOMMENDS "iptables | nftables")
set(CPACK_DEBIAN_VERDICTD_PACKAGE_SUGGESTS "prometheus, man-db")
set(CPACK_DEBIAN_VERDICTD_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/../deploy/debian/conffiles
    ${CMAKE_CURRENT_LIST_DIR}/../deploy/debian/postinst
    ${CMAKE_CURRENT_LIST_DIR}/../deploy/debian/prerm
    ${CMAKE_CURRENT_LIST_DIR}/../deploy/debian/postrm)
set(CPACK_DEBIAN_VERDICTD_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_COMPONENT_DEV_DESCRIPTION
    "verdictd development files
 Headers, libraries, pkg-config and CMake package files for verdictd's
 public C interfaces (extensions, libipq).")
set(CPACK_COMPONENT_DEV_DEPENDS verdictd)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME verdictd-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS ON)

include(CPack)
