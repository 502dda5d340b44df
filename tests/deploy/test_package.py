"""The .deb on this machine: built with cpack from this build tree, installed
with dpkg -i, checked (configuration valid, unit accepted by systemd-analyze
verify and scored, man pages open, files where the layout says), compared
with `cmake --install`, then purged: nothing may be left, /etc/verdictd
included. Root only. Refuses to run (skip, with the reason) when a verdictd
package is already installed or /etc/verdictd exists: the test would replace
or purge what someone else put there."""
import fnmatch
import glob
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployment  # noqa: E402

# What the verdictd package carries at least (files and links), the layout of
# cmake/VerdictdInstall.cmake for the prefix /usr. Libraries of the tree add
# their own files (libipq: the shared library and its man pages).
EXPECTED = {
    "usr/sbin/verdictd",
    "usr/lib/systemd/system/verdictd.service",
    "etc/verdictd/verdictd.toml",
    "usr/share/man/man8/verdictd.8.gz",
    "usr/share/man/man5/verdictd.toml.5.gz",
    "usr/share/verdictd/firewall/verdictd.nft",
    "usr/share/verdictd/firewall/iptables.rules",
    "usr/share/verdictd/firewall/ip6tables.rules",
    "usr/share/verdictd/firewall/verdictd-firewall",
    "usr/share/verdictd/firewall/README.md",
    "usr/share/verdictd/prometheus/prometheus.yml",
    "usr/share/verdictd/prometheus/verdictd-alerts.yml",
    "usr/share/verdictd/prometheus/verdictd-alerts.test.yml",
    "usr/share/verdictd/grafana/verdictd-dashboard.json",
    "usr/share/doc/verdictd/README.md",
    "usr/share/doc/verdictd/deployment.md",
    "usr/share/doc/verdictd/configuration.md",
    "usr/share/doc/verdictd/firewall.md",
    "usr/share/doc/verdictd/metrics.md",
    "usr/share/doc/verdictd/rules.md",
    "usr/share/doc/verdictd/verdictd.example.toml",
    # libipq: the shared library and its section 3 pages (headers, the .so
    # link, the static archive and libipq.pc are in verdictd-dev).
    # The example extensions, the Rust one included.
    *(f"usr/lib/verdictd/extensions/{name}.so"
      for name in ("template", "rewrite", "flowcount", "slowlookup", "portblock")),
    "usr/lib/libipq.so.1",
    "usr/lib/libipq.so.1.0.0",
    "usr/share/man/man3/libipq.3",
    *(f"usr/share/man/man3/ipq_{name}.3" for name in (
        "create_handle", "destroy_handle", "read", "set_mode", "message_type", "get_packet",
        "get_msgerr", "set_verdict", "ctl", "errstr", "perror")),
}

# Where files of each package may go, and nowhere else.
ALLOWED = {
    "verdictd": ("etc/verdictd/", "usr/sbin/", "usr/lib/systemd/system/", "usr/share/man/",
                 "usr/share/verdictd/", "usr/share/doc/verdictd/", "usr/lib/"),
    # The extension template's sources: copied to start a new extension.
    "verdictd-dev": ("usr/include/", "usr/lib/", "usr/share/verdictd/extension-template/"),
}

# Where a package could leave something behind. /var/cache/man (man-db's
# index, rebuilt by its trigger) and logs are not the package's.
WATCHED = ["/etc", "/usr", "/var/lib/dpkg/info", "/var/lib/systemd"]

if os.geteuid() != 0:
    deployment.skip("needs root: installs and purges the verdictd package with dpkg")
for needed in ("dpkg", "dpkg-deb", "dpkg-query", "man", "systemd-analyze", "fakeroot"):
    deployment.tool(needed)


def installed(package):
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                            capture_output=True, text=True)
    return result.returncode == 0 and "installed" in result.stdout.split()


for package in ("verdictd", "verdictd-dev"):
    if installed(package):
        deployment.skip(f"a {package} package is already installed on this machine; "
                        f"this test would replace and purge it (dpkg --purge {package} first)")
if os.path.exists("/etc/verdictd"):
    deployment.skip("/etc/verdictd exists and is not from this test's package; purging "
                    "the package would delete it (move it away first)")


def dpkg_excluded(path):
    """Whether dpkg's path-exclude/path-include settings (minimal images drop
    /usr/share/man and /usr/share/doc) keep `path` (absolute) off the disk;
    the last matching setting decides, as in dpkg."""
    decision = False
    for conf in sorted(glob.glob("/etc/dpkg/dpkg.cfg.d/*")) + ["/etc/dpkg/dpkg.cfg"]:
        try:
            with open(conf) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, pattern = line.strip().partition("=")
            if key in ("path-exclude", "path-include") and fnmatch.fnmatch(path, pattern.strip()):
                decision = key == "path-exclude"
    return decision


def snapshot():
    paths = set()
    for root in WATCHED:
        for base, dirs, files in os.walk(root):
            for name in files + dirs:
                paths.add(os.path.join(base, name))
    return paths


def package_name(deb):
    return deployment.run(["dpkg-deb", "-f", deb, "Package"]).stdout.strip()


def deb_files(deb):
    """Files and links of a .deb (dpkg-deb -c), without the leading './'."""
    listing = deployment.run(["dpkg-deb", "-c", deb]).stdout
    names = set()
    for line in listing.splitlines():
        mode, _, _, _, _, name = line.split(None, 5)
        name = name.split(" -> ")[0]
        if not mode.startswith("d"):
            names.add(name[2:] if name.startswith("./") else name)
    return names


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="verdictd-package-")
        cls.debs = cls.build_debs(os.path.join(cls.tmp.name, "out"))
        cls.deb = next(d for d in cls.debs if os.path.basename(d).startswith("verdictd_"))
        cls.before = snapshot()
        cls.installed = False
        try:
            deployment.run(["dpkg", "-i", *cls.debs])
            cls.installed = True
        except BaseException:
            cls.purge()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.purge()
        cls.tmp.cleanup()

    @classmethod
    def build_debs(cls, out):
        cpack = deployment.tool("cpack", "CPACK_COMMAND")
        config = os.path.join(deployment.build_dir(), "CPackConfig.cmake")
        if not os.path.exists(config):
            deployment.skip(f"no {config}: configure the build tree with CMake first")
        deployment.run([cpack, "-G", "DEB", "--config", config, "-B", out])
        debs = sorted(glob.glob(os.path.join(out, "*.deb")))
        if not any(os.path.basename(d).startswith("verdictd_") for d in debs):
            raise AssertionError(f"cpack made no verdictd_*.deb in {out}: {debs}")
        print("built: " + ", ".join(os.path.basename(d) for d in debs), flush=True)
        return debs

    @classmethod
    def purge(cls):
        for package in ("verdictd-dev", "verdictd"):
            if installed(package) or subprocess.run(
                    ["dpkg-query", "-W", package], capture_output=True).returncode == 0:
                subprocess.run(["dpkg", "--purge", package], capture_output=True, text=True)

    # --- the installed package -------------------------------------------
    def test_files_are_where_the_layout_says(self):
        files = deb_files(self.deb)
        self.assertEqual(sorted(EXPECTED - files), [], "missing from the package")
        for deb in self.debs:
            name = package_name(deb)
            for path in deb_files(deb):
                self.assertTrue(path.startswith(ALLOWED[name]), f"{name} ships {path}")
        dev = [d for d in self.debs if package_name(d) == "verdictd-dev"]
        for path in (deb_files(dev[0]) if dev else ()):
            # Development files only: headers, static libraries, .so links,
            # pkg-config and CMake package files.
            self.assertRegex(path, r"^usr/include/|\.a$|\.so$|/pkgconfig/.*\.pc$|/cmake/|"
                                   r"^usr/share/verdictd/extension-template/", path)
        listed = set(deployment.run(["dpkg", "-L", "verdictd"]).stdout.split())
        for path in files:
            self.assertIn("/" + path, listed)
            if dpkg_excluded("/" + path):
                print(f"/{path}: dropped by this machine's dpkg path-exclude", flush=True)
                continue
            self.assertTrue(os.path.lexists("/" + path), path)
        self.assertTrue(os.access("/usr/sbin/verdictd", os.X_OK))
        self.assertTrue(os.access("/usr/share/verdictd/firewall/verdictd-firewall", os.X_OK))

    def test_config_is_a_conffile_and_valid(self):
        with open(os.path.join(self.control_dir(), "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/verdictd/verdictd.toml"])
        result = deployment.run(["/usr/sbin/verdictd", "--check-config",
                                 "/etc/verdictd/verdictd.toml"], check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_version_is_the_package_version(self):
        version = deployment.run(["dpkg-query", "-W", "-f=${Version}", "verdictd"]).stdout
        self.assertEqual(deployment.run(["/usr/sbin/verdictd", "--version"]).stdout.strip(),
                         f"verdictd {version}")

    def test_depends_come_from_the_binary(self):
        depends = deployment.run(["dpkg-query", "-W", "-f=${Depends}", "verdictd"]).stdout
        for library in ("libc6", "libmnl0", "libnetfilter-queue1", "libprometheus-cpp-pull"):
            self.assertIn(library, depends)

    def test_systemd_accepts_the_installed_unit(self):
        unit = "/usr/lib/systemd/system/verdictd.service"
        result = deployment.run(["systemd-analyze", "verify", unit], check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # Quiet: ExecStart= exists and the Documentation= man pages open.
        if not dpkg_excluded("/usr/share/man/man8/verdictd.8.gz"):
            self.assertEqual(result.stderr.strip(), "", "systemd-analyze verify warned")
        deployment.check_exposure(self, unit)

    def test_man_pages_open(self):
        if dpkg_excluded("/usr/share/man/man8/verdictd.8.gz"):
            deployment.skip_test(self, "this machine's dpkg path-exclude drops man pages")
        for args, title in ((["verdictd"], "VERDICTD(8)"), (["5", "verdictd.toml"], "VERDICTD.TOML(5)")):
            result = deployment.run(["man", "-P", "cat", *args], check=False)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(title, result.stdout)
            self.assertIn("SEE ALSO", result.stdout)

    def test_cmake_install_carries_the_same_layout(self):
        for deb in self.debs:
            component = {"verdictd": "verdictd", "verdictd-dev": "dev"}[package_name(deb)]
            # As CPack installs: DESTDIR and the prefix /usr.
            staged = os.path.join(self.tmp.name, "destdir-" + component)
            deployment.cmake_install("/usr", destdir=staged, component=component)
            self.assertEqual(deployment.tree(staged), deb_files(deb))
            # Any other prefix: the same tree under it (with <prefix>/etc).
            prefix = os.path.join(self.tmp.name, "prefix-" + component)
            deployment.cmake_install(prefix, component=component)
            relative = {p[len("usr/"):] if p.startswith("usr/") else p for p in deb_files(deb)}
            self.assertEqual(deployment.tree(prefix), relative)

    def test_shared_libraries_are_registered(self):
        libraries = [p for p in deb_files(self.deb) if re.search(r"\.so\.\d+$", p)]
        self.assertIn("usr/lib/libipq.so.1", libraries)
        with open(os.path.join(self.control_dir(), "triggers")) as f:
            self.assertIn("activate-noawait ldconfig", f.read())
        with open(os.path.join(self.control_dir(), "shlibs")) as f:
            shlibs = f.read()
        cache = deployment.run(["ldconfig", "-p"]).stdout
        for library in libraries:
            name = os.path.basename(library)
            self.assertIn(name, cache, f"{name} is not in the linker cache")
            stem, _, major = name.rpartition(".so.")
            self.assertIn(f"{stem} {major} verdictd (= ", shlibs)

    def test_a_libipq_era_program_builds_with_cc_lipq(self):
        # The man page's example, unmodified, against the installed packages
        # only: the header in /usr/include, -lipq from the linker's default
        # path, and the shared library found at run time without any setting.
        passer = os.path.join(deployment.source_dir(), "libipq", "examples", "passer.c")
        program = os.path.join(self.tmp.name, "passer")
        result = subprocess.run(["cc", passer, "-o", program, "-lipq"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        linked = deployment.run(["ldd", program]).stdout
        self.assertRegex(linked, r"libipq\.so\.1 => /(usr/)?lib/libipq\.so\.1")

    def control_dir(self):
        path = os.path.join(self.tmp.name, "control")
        if not os.path.isdir(path):
            deployment.run(["dpkg-deb", "-e", self.deb, path])
        return path

    # --- purge: last (unittest runs tests in name order) ------------------
    def test_zz_purge_leaves_nothing(self):
        names = [package_name(deb) for deb in self.debs]
        removed = deployment.run(["dpkg", "--purge", *sorted(names, key=len, reverse=True)])
        self.assertIn("Purging configuration files for verdictd", removed.stdout)
        for package in ("verdictd-dev", "verdictd"):
            self.assertFalse(installed(package))
        self.assertFalse(os.path.exists("/etc/verdictd"))
        after = snapshot()
        self.assertEqual(sorted(after - self.before), [], "left behind by the package")
        self.assertEqual(sorted(self.before - after), [], "removed by the package")


if __name__ == "__main__":
    unittest.main()
