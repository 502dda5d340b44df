# Install rules for everything verdictd ships besides its targets. The layout,
# relative to the install prefix (the package uses /usr):
#
#   sbin/verdictd                              the daemon (service/CMakeLists.txt)
#   lib/systemd/system/verdictd.service        the hardened unit (ExecStart= names sbin/verdictd)
#   <etc>/verdictd/verdictd.toml               default configuration (a conffile in the .deb)
#   share/man/man8/verdictd.8                  verdictd(8)
#   share/man/man5/verdictd.toml.5             verdictd.toml(5)
#   share/verdictd/firewall/                   nftables, iptables and ip6tables templates + loader
#   share/verdictd/prometheus/                 scrape configuration and alert rules
#   share/verdictd/grafana/                    dashboard
#   share/doc/verdictd/                        README, deployment and reference docs, example config
#
# <etc> is /etc when the prefix is /usr (the package) and <prefix>/etc
# otherwise. It is decided when installing, not when configuring, so that
# `cmake --install build --prefix DIR` and the .deb (CPack installs with
# DESTDIR and prefix /usr) carry the same layout from one build tree.
#
# Runtime files are COMPONENT verdictd; headers, static libraries, .so links,
# pkg-config and CMake package files are COMPONENT dev (package verdictd-dev).

set(_verdictd_src ${CMAKE_CURRENT_SOURCE_DIR})
set(_verdictd_stage ${CMAKE_CURRENT_BINARY_DIR}/install-stage)

# The configuration directory and the unit, whose paths follow the prefix.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(_verdictd_etc \"/etc\")
  else()
    set(_verdictd_etc \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}\")
  endif()
  file(INSTALL DESTINATION \"\${_verdictd_etc}/verdictd\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES \"${_verdictd_src}/deploy/verdictd.toml\")
  file(READ \"${_verdictd_src}/deploy/verdictd.service\" _verdictd_unit)
  string(REPLACE \"/usr/sbin/verdictd\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}/verdictd\"
         _verdictd_unit \"\${_verdictd_unit}\")
  string(REPLACE \"/etc/verdictd/\" \"\${_verdictd_etc}/verdictd/\" _verdictd_unit \"\${_verdictd_unit}\")
  string(REPLACE \"/usr/share/doc/verdictd/\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATAROOTDIR}/doc/verdictd/\"
         _verdictd_unit \"\${_verdictd_unit}\")
  file(WRITE \"${_verdictd_stage}/verdictd.service\" \"\${_verdictd_unit}\")
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES \"${_verdictd_stage}/verdictd.service\")
" COMPONENT verdictd)

# Man pages carry the project's version.
foreach(_verdictd_page verdictd.8 verdictd.toml.5)
  configure_file(docs/man/${_verdictd_page} ${CMAKE_CURRENT_BINARY_DIR}/docs/man/${_verdictd_page} @ONLY)
endforeach()
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/docs/man/verdictd.8
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT verdictd)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/docs/man/verdictd.toml.5
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man5 COMPONENT verdictd)

install(FILES deploy/firewall/verdictd.nft deploy/firewall/iptables.rules
              deploy/firewall/ip6tables.rules deploy/firewall/README.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/verdictd/firewall COMPONENT verdictd)
install(PROGRAMS deploy/firewall/verdictd-firewall
        DESTINATION ${CMAKE_INSTALL_DATADIR}/verdictd/firewall COMPONENT verdictd)
install(FILES deploy/prometheus/prometheus.yml deploy/prometheus/verdictd-alerts.yml
              deploy/prometheus/verdictd-alerts.test.yml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/verdictd/prometheus COMPONENT verdictd)
install(FILES deploy/grafana/verdictd-dashboard.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/verdictd/grafana COMPONENT verdictd)

install(FILES README.md docs/deployment.md docs/configuration.md docs/firewall.md docs/metrics.md
              docs/rules.md docs/verdictd.example.toml
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT verdictd)
