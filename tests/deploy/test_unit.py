"""The hardened systemd unit, as `cmake --install` installs it into a
temporary prefix (so ExecStart= names a binary that exists): accepted by
`systemd-analyze verify` without a warning (Documentation= man pages found
too), and an exposure of at most 1.5 in `systemd-analyze security
--offline=true`. The source unit deploy/verdictd.service is scored too."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployment  # noqa: E402


class HardenedUnit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="verdictd-unit-")
        cls.prefix = os.path.join(cls.tmp.name, "prefix")
        deployment.cmake_install(cls.prefix)
        cls.unit = os.path.join(cls.prefix, "lib", "systemd", "system", "verdictd.service")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_installed_unit_names_the_installed_binary_and_config(self):
        with open(self.unit) as f:
            text = f.read()
        self.assertIn(f"ExecStart={self.prefix}/sbin/verdictd --config "
                      f"{self.prefix}/etc/verdictd/verdictd.toml\n", text)
        self.assertTrue(os.access(os.path.join(self.prefix, "sbin", "verdictd"), os.X_OK))

    def test_verify_accepts_the_installed_unit(self):
        env = dict(os.environ, MANPATH=os.path.join(self.prefix, "share", "man"))
        result = deployment.run([deployment.tool("systemd-analyze"), "verify", self.unit],
                                check=False, env=env)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stderr.strip(), "", "systemd-analyze verify warned")

    def test_exposure_of_the_installed_unit(self):
        deployment.check_exposure(self, self.unit)

    def test_exposure_of_the_source_unit(self):
        deployment.check_exposure(self, os.path.join(deployment.source_dir(), "deploy",
                                                     "verdictd.service"))

    def test_unit_does_what_verdictd_needs(self):
        # The settings the daemon's job depends on, so hardening cannot quietly
        # take one away: queues (netlink + CAP_NET_ADMIN), readiness and
        # watchdog, the control socket's directory, the metrics endpoint.
        with open(self.unit) as f:
            lines = {line.strip() for line in f if "=" in line and not line.startswith("#")}
        for needed in ("Type=notify", "NotifyAccess=main", "AmbientCapabilities=CAP_NET_ADMIN",
                       "CapabilityBoundingSet=CAP_NET_ADMIN", "RuntimeDirectory=verdictd",
                       "RestrictAddressFamilies=AF_NETLINK AF_UNIX AF_INET AF_INET6",
                       "IPAddressAllow=localhost", "ExecReload=/bin/kill -HUP $MAINPID"):
            self.assertIn(needed, lines)
        self.assertTrue(any(line.startswith("WatchdogSec=") for line in lines))

    def test_default_config_is_valid_and_is_the_embedded_defaults(self):
        config = os.path.join(self.prefix, "etc", "verdictd", "verdictd.toml")
        binary = os.environ.get("VERDICTD_BIN") or os.path.join(self.prefix, "sbin", "verdictd")
        deployment.run([binary, "--check-config", config])
        from_file = deployment.run([binary, "--config", config, "--print-config"]).stdout
        embedded = deployment.run([binary, "--print-config"]).stdout
        self.assertEqual(from_file, embedded,
                         "deploy/verdictd.toml no longer spells out the embedded defaults")


if __name__ == "__main__":
    unittest.main()
