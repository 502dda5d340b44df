"""Helpers of the deployment tests: the build tree, a temporary install, the
systemd-analyze exposure score. Standard library only."""

import os
import re
import shutil
import subprocess
import sys

SKIP = 77  # CTest SKIP_RETURN_CODE

# The exposure the shipped unit must not exceed (systemd-analyze security,
# scale 0.0 .. 10.0).
MAX_EXPOSURE = 1.5


def strict():
    """CI mode (.ci/run sets VERDICTD_STRICT=1): a test that would skip fails."""
    return os.environ.get("VERDICTD_STRICT") == "1"


def skip(reason):
    """Prints why the test is skipped and exits with the skip code; in CI mode
    a skip is a failure (exit 1)."""
    if strict():
        print(f"FAIL: would skip, and CI mode allows no skip: {reason}", flush=True)
        sys.exit(1)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def skip_test(testcase, reason):
    """unittest's skipTest, except in CI mode, where the test fails instead."""
    if strict():
        testcase.fail(f"would skip, and CI mode allows no skip: {reason}")
    testcase.skipTest(reason)


def source_dir():
    return os.environ.get("VERDICTD_SOURCE_DIR",
                          os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def build_dir():
    path = os.environ.get("VERDICTD_BUILD_DIR", os.path.join(source_dir(), "build"))
    if not os.path.exists(os.path.join(path, "cmake_install.cmake")):
        skip(f"no configured build tree at {path} (set VERDICTD_BUILD_DIR)")
    return path


def tool(name, env_name=None):
    path = os.environ.get(env_name) if env_name else None
    path = path or shutil.which(name)
    if not path:
        skip(f"needs the '{name}' command")
    return path


def run(cmd, check=True, env=None, timeout=300):
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                             f"{result.stdout}{result.stderr}")
    return result


def cmake_install(prefix, destdir=None, component="verdictd"):
    """`[DESTDIR=destdir] cmake --install BUILD --prefix prefix --component component`."""
    env = dict(os.environ)
    if destdir:
        env["DESTDIR"] = destdir
    cmd = [tool("cmake", "CMAKE_COMMAND"), "--install", build_dir(), "--prefix", prefix]
    if component:
        cmd += ["--component", component]
    run(cmd, env=env)


def tree(root):
    """Every file and symbolic link under root, as paths relative to it."""
    found = set()
    for base, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            found.add(os.path.relpath(os.path.join(base, name), root))
    return found


def exposure(unit_path):
    """(score, report) of `systemd-analyze security --offline=true UNIT`."""
    result = run([tool("systemd-analyze"), "security", "--offline=true", "--no-pager", unit_path],
                 check=False)
    text = result.stdout + result.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", text)
    if not m:
        raise AssertionError(f"no exposure score in systemd-analyze's output:\n{text}")
    return float(m.group(1)), text


def check_exposure(testcase, unit_path):
    """Asserts the unit's exposure is at most MAX_EXPOSURE (also through
    --threshold, systemd-analyze's own check) and prints the score."""
    score, report = exposure(unit_path)
    print(f"systemd-analyze security --offline=true {unit_path}: exposure {score}", flush=True)
    testcase.assertLessEqual(score, MAX_EXPOSURE, report)
    threshold = run([tool("systemd-analyze"), "security", "--offline=true", "--no-pager",
                     f"--threshold={int(round(MAX_EXPOSURE * 10))}", unit_path], check=False)
    testcase.assertEqual(threshold.returncode, 0, threshold.stdout + threshold.stderr)
    return score
