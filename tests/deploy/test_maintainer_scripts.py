"""The package's maintainer scripts (deploy/debian/) run for every dpkg
action, each in a private mount namespace: /run is a fresh tmpfs (with or
without /run/systemd/system, i.e. systemd running as init or not) and, for
purge, /etc is a fresh tmpfs holding what an installed package leaves, so the
real system is never touched. A stub `systemctl` first in PATH records each
call. Checked: systemd is called only when it runs, with exactly the calls
each action needs; purge (and only purge) removes /etc/verdictd and the
enablement link. Root only (mount namespaces)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployment  # noqa: E402

if os.geteuid() != 0:
    deployment.skip("needs root: runs the maintainer scripts in private mount namespaces")
deployment.tool("unshare")

SCRIPTS = os.path.join(deployment.source_dir(), "deploy", "debian")

# The setup inside the namespace: fresh /run (and /etc), then the script.
_SETUP = r"""
set -e
mount -t tmpfs tmpfs /run
if [ "$WITH_SYSTEMD" = 1 ]; then mkdir -p /run/systemd/system; fi
if [ "$FAKE_ETC" = 1 ]; then
  mount -t tmpfs tmpfs /etc
  mkdir -p /etc/verdictd/rules.d /etc/systemd/system/multi-user.target.wants /etc/other
  echo '[verdict]' > /etc/verdictd/verdictd.toml
  echo 'added by the operator' > /etc/verdictd/rules.d/local.toml
  ln -s /usr/lib/systemd/system/verdictd.service /etc/systemd/system/multi-user.target.wants/verdictd.service
  echo keep > /etc/other/file
fi
"$@"
status=$?
if [ "$FAKE_ETC" = 1 ]; then find /etc | sort > "$RESULT_DIR/etc-after"; fi
exit $status
"""


class MaintainerScripts(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="verdictd-maint-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.stubs = os.path.join(self.tmp, "bin")
        os.mkdir(self.stubs)
        self.calls = os.path.join(self.tmp, "calls")
        with open(os.path.join(self.stubs, "systemctl"), "w") as f:
            f.write(f'#!/bin/sh\necho "$*" >> {self.calls}\nexit 0\n')
        os.chmod(os.path.join(self.stubs, "systemctl"), 0o755)

    def run_script(self, script, *args, systemd=True, fake_etc=False):
        env = dict(os.environ, PATH=f"{self.stubs}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                   WITH_SYSTEMD="1" if systemd else "0", FAKE_ETC="1" if fake_etc else "0",
                   RESULT_DIR=self.tmp)
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                 _SETUP, "setup", "sh", os.path.join(SCRIPTS, script), *args],
                                capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        calls = []
        if os.path.exists(self.calls):
            with open(self.calls) as f:
                calls = f.read().splitlines()
            os.remove(self.calls)
        return calls

    def etc_after(self):
        with open(os.path.join(self.tmp, "etc-after")) as f:
            return f.read().split()

    def test_postinst_reloads_systemd_only_when_it_runs(self):
        self.assertEqual(self.run_script("postinst", "configure", ""), ["daemon-reload"])
        self.assertEqual(self.run_script("postinst", "configure", "", systemd=False), [])

    def test_postinst_upgrade_restarts_a_running_service(self):
        self.assertEqual(self.run_script("postinst", "configure", "0.0.9"),
                         ["daemon-reload", "is-active --quiet verdictd.service",
                          "try-restart verdictd.service"])
        self.assertEqual(self.run_script("postinst", "configure", "0.0.9", systemd=False), [])

    def test_prerm_stops_the_service_on_remove_only(self):
        self.assertEqual(self.run_script("prerm", "remove"), ["stop verdictd.service"])
        self.assertEqual(self.run_script("prerm", "upgrade", "0.2.0"), [])
        self.assertEqual(self.run_script("prerm", "remove", systemd=False), [])

    def test_remove_keeps_the_configuration(self):
        self.assertEqual(self.run_script("postrm", "remove", fake_etc=True), ["daemon-reload"])
        after = self.etc_after()
        self.assertIn("/etc/verdictd/verdictd.toml", after)
        self.assertIn("/etc/verdictd/rules.d/local.toml", after)

    def test_purge_removes_configuration_and_enablement_only(self):
        self.assertEqual(self.run_script("postrm", "purge", fake_etc=True), ["daemon-reload"])
        after = self.etc_after()
        self.assertFalse([p for p in after if p.startswith("/etc/verdictd")], after)
        self.assertNotIn("/etc/systemd/system/multi-user.target.wants/verdictd.service", after)
        self.assertIn("/etc/other/file", after)
        self.assertIn("/etc/systemd/system/multi-user.target.wants", after)
        # Without systemd running: the same files go, no systemctl call.
        self.assertEqual(self.run_script("postrm", "purge", systemd=False, fake_etc=True), [])
        self.assertFalse([p for p in self.etc_after() if p.startswith("/etc/verdictd")])

    def test_scripts_are_posix_sh(self):
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(SCRIPTS, script)
            self.assertTrue(os.access(path, os.X_OK), f"{script} is not executable")
            result = subprocess.run(["sh", "-n", path], capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stderr)


if __name__ == "__main__":
    unittest.main()
