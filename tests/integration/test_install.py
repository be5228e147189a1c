"""`make install`: every file in place with the install paths filled in, the installed binary runs and
accepts the installed config, the man pages render without a warning and document every option, the
systemd unit passes `systemd-analyze verify`, and `make uninstall` removes what install put in place.

One `make install DESTDIR=<tmp> PREFIX=/usr SYSCONFDIR=/etc` serves the module (the binary is already
built by `make test`, so it only copies files). groff, man and systemd-analyze are needed: a missing one
fails its test with the package to install (scripts/install-deps.sh), it is never skipped.

systemd-analyze verify checks a unit offline, but it also checks that ExecStart's binary exists and that
the Documentation= man pages open. So it runs on a copy of the installed unit whose /usr/bin and /etc
paths point into DESTDIR, with MANPATH set to DESTDIR's man directory."""
import gzip
import os
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import REPO

PREFIX = "/usr"
SYSCONFDIR = "/etc"
BINDIR = PREFIX + "/bin"
UNITDIR = PREFIX + "/lib/systemd/system"
MANDIR = PREFIX + "/share/man"
CONF = SYSCONFDIR + "/cachetoryd/cachetoryd.conf"
BIN = BINDIR + "/cachetoryd"
UNIT = UNITDIR + "/cachetoryd.service"
MAN8 = MANDIR + "/man8/cachetoryd.8.gz"
MAN5 = MANDIR + "/man5/cachetoryd.conf.5.gz"

DEPS = "run scripts/install-deps.sh (Debian packages: %s)"
PLACEHOLDER = re.compile(r"@[A-Z_]+@")

# Variables the Makefile's install target reads with ?=: the caller's environment must not move files.
MAKE_ENV_DROP = ("DESTDIR", "PREFIX", "SYSCONFDIR", "BINDIR", "MANDIR", "UNITDIR", "GZIP_MAN", "INSTALL",
                 "MAKEFLAGS", "MFLAGS", "MAKELEVEL")


def need(tool, package):
    path = shutil.which(tool)
    if path is None:
        pytest.fail("%s not found: %s" % (tool, DEPS % package), pytrace=False)
    return path


def make(target, destdir, *extra):
    env = {k: v for k, v in os.environ.items() if k not in MAKE_ENV_DROP}
    argv = [need("make", "make"), "--no-print-directory", "-C", str(REPO), target, "DESTDIR=" + destdir,
            "PREFIX=" + PREFIX, "SYSCONFDIR=" + SYSCONFDIR] + list(extra)
    r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert r.returncode == 0, "%s failed (%d):\n%s" % (" ".join(argv), r.returncode, r.stdout)
    return r.stdout


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add("/" + os.path.relpath(os.path.join(d, n), root))
    return out


@pytest.fixture(scope="module")
def destdir():
    d = tempfile.mkdtemp(prefix="cachetoryd-install-")
    make("install", d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def at(destdir, path):
    return destdir + path


def read_text(path):
    if path.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return f.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def unit_settings(text):
    """{(section, key): [values]} of a unit file."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


# ---- the files --------------------------------------------------------------------------------


def test_every_file_in_place(destdir):
    assert files_under(destdir) == {BIN, CONF, UNIT, MAN8, MAN5}
    mode = stat.S_IMODE(os.stat(at(destdir, BIN)).st_mode)
    assert mode == 0o755, oct(mode)
    for p in (CONF, UNIT, MAN8, MAN5):
        mode = stat.S_IMODE(os.stat(at(destdir, p)).st_mode)
        assert mode == 0o644, "%s: %s" % (p, oct(mode))
    with open(at(destdir, CONF), "rb") as a, open(REPO / "conf" / "cachetoryd.conf", "rb") as b:
        assert a.read() == b.read(), "the installed config differs from conf/cachetoryd.conf"
    for p in (MAN8, MAN5):     # gzipped, as Debian ships man pages, and reproducibly (gzip -n)
        with open(at(destdir, p), "rb") as f:
            head = f.read(10)
        assert head[:2] == b"\x1f\x8b", p
        assert head[4:8] == b"\0\0\0\0", "%s: gzip header holds a timestamp (use gzip -n)" % p


def test_paths_substituted(destdir):
    for p in (UNIT, MAN8, MAN5):
        text = read_text(at(destdir, p))
        left = sorted(set(PLACEHOLDER.findall(text)))
        assert not left, "%s still holds %s" % (p, left)
        assert destdir not in text, "%s names DESTDIR %s" % (p, destdir)
    unit = unit_settings(read_text(at(destdir, UNIT)))
    assert unit[("Service", "ExecStart")] == ["%s %s" % (BIN, CONF)]
    assert unit[("Service", "ExecStartPre")] == ["%s --test-config %s" % (BIN, CONF)]
    assert CONF in read_text(at(destdir, MAN8))
    assert UNIT in read_text(at(destdir, MAN8))
    assert CONF in read_text(at(destdir, MAN5))


def test_unit_settings(destdir):
    unit = unit_settings(read_text(at(destdir, UNIT)))
    want = {
        "Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure",
        "LimitNOFILE": "65536", "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "NoNewPrivileges": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
        "RuntimeDirectory": "cachetoryd", "CapabilityBoundingSet": "",
    }
    for key, value in want.items():
        assert unit.get(("Service", key)) == [value], "%s: %r" % (key, unit.get(("Service", key)))
    assert "@system-service" in unit[("Service", "SystemCallFilter")]
    assert ("Service", "UMask") in unit
    assert unit[("Install", "WantedBy")] == ["multi-user.target"]
    assert "man:cachetoryd(8)" in unit[("Unit", "Documentation")][0]


# ---- the installed binary ---------------------------------------------------------------------


def test_installed_binary_version(destdir):
    r = subprocess.run([at(destdir, BIN), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("cachetoryd "), r.stdout


def test_installed_binary_checks_installed_config(destdir):
    r = subprocess.run([at(destdir, BIN), "--test-config", at(destdir, CONF)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "is valid" in r.stdout
    bad = os.path.join(destdir, "bad.conf")
    try:
        with open(bad, "w") as f:
            f.write("[server]\nport = 99999\n")
        r = subprocess.run([at(destdir, BIN), "-t", bad], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "bad.conf:2: 'port = 99999'" in r.stderr
    finally:
        os.unlink(bad)


# ---- the man pages ----------------------------------------------------------------------------


@pytest.mark.parametrize("page", [MAN8, MAN5])
def test_man_page_renders_with_groff_without_warnings(destdir, page):
    groff = need("groff", "groff-base")
    r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z"], input=read_text(at(destdir, page)),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", "groff -man -Tutf8 -ww %s:\n%s" % (page, r.stderr)


@pytest.mark.parametrize("page,sections", [
    (MAN8, ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "SYSTEMD", "FILES", "EXIT STATUS",
            "EXAMPLES", "SEE ALSO"]),
    (MAN5, ["NAME", "SYNOPSIS", "DESCRIPTION", "SYNTAX", "[server] OPTIONS", "[cache] OPTIONS",
            "[upstream] OPTIONS", "[log] OPTIONS", "BACKENDS", "CODEC CHAIN", "SEE ALSO"]),
])
def test_man_page_renders_with_man(destdir, page, sections):
    man = need("man", "man-db")
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
    r = subprocess.run([man, "--warnings", "-l", at(destdir, page)], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 0 and r.stderr == "", "man -l %s:\n%s" % (page, r.stderr)
    headings = {line.strip() for line in r.stdout.splitlines() if line and not line[0].isspace()}
    for s in sections:
        assert s in headings, "%s: no section %s in:\n%s" % (page, s, sorted(headings))
    # the NAME line that mandb/apropos index
    lexgrog = need("lexgrog", "man-db")
    r = subprocess.run([lexgrog, at(destdir, page)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "cachetoryd" in r.stdout, r.stdout + r.stderr


def help_options(binary):
    """[(section, name, default)] from `cachetoryd --help`."""
    r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    out, section = [], None
    for line in r.stdout.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^  --([a-z0-9-]+) <.*>  \(default: (.*)\)$", line)
        if m:
            out.append((section, m.group(1), m.group(2)))
    assert len(out) > 20, r.stdout
    return out


def test_conf_page_documents_every_option(destdir):
    """Every option of --help has an entry `name = ...` under its section's heading in cachetoryd.conf(5),
    with the same default."""
    src = read_text(at(destdir, MAN5)).replace("\\-", "-")
    parts = re.split(r'^\.SH "\[(\w+)\] OPTIONS"$', src, flags=re.M)
    by_section = {parts[i]: parts[i + 1].split("\n.SH ")[0] for i in range(1, len(parts), 2)}
    missing, wrong = [], []
    for section, name, default in help_options(at(destdir, BIN)):
        body = by_section.get(section, "")
        m = re.search(r'^\.BI "%s = ".*$' % re.escape(name), body, flags=re.M)
        if m is None:
            missing.append("[%s] %s" % (section, name))
            continue
        entry = re.split(r'^\.TP\n\.BI? "', body[m.end():], flags=re.M)[0]
        d = re.search(r'Default:[ \t]*(?:\n\.BR? )?(?:"([^"\n]+)"|(\S+))', entry)
        documented = (d.group(1) or d.group(2).rstrip(".")) if d else None
        if documented != default:
            wrong.append("%s: --help says %r, the page %r" % (name, default, documented))
    assert not missing, "cachetoryd.conf(5) lacks: %s" % ", ".join(missing)
    assert not wrong, "cachetoryd.conf(5) defaults differ: %s" % "; ".join(wrong)


# ---- the systemd unit -------------------------------------------------------------------------


def test_unit_passes_systemd_analyze_verify(destdir):
    analyze = need("systemd-analyze", "systemd")
    need("man", "man-db")      # verify opens the Documentation= pages with man
    text = read_text(at(destdir, UNIT))
    # Point the unit at the files under DESTDIR (verify wants ExecStart's binary to exist).
    text = text.replace(BIN, at(destdir, BIN)).replace(CONF, at(destdir, CONF))
    vdir = tempfile.mkdtemp(prefix="cachetoryd-verify-")
    try:
        unit = os.path.join(vdir, "cachetoryd.service")
        with open(unit, "w") as f:
            f.write(text)
        env = dict(os.environ, MANPATH=at(destdir, MANDIR), SYSTEMD_LOG_LEVEL="notice", LC_ALL="C.UTF-8",
                   SYSTEMD_PAGER="", MANPAGER="cat")
        r = subprocess.run([analyze, "verify", unit], capture_output=True, text=True, env=env, timeout=60)
        out = r.stdout + r.stderr
        about_unit = [line for line in out.splitlines() if "cachetoryd" in line]
        assert r.returncode == 0 and not about_unit, "systemd-analyze verify %s (%d):\n%s" % (
            unit, r.returncode, out)
        # The sandbox as systemd scores it: 0 (locked down) to 10 (unprotected); --threshold is 10x.
        r = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", unit],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, "systemd-analyze security: exposure above 2.0:\n%s" % (
            "\n".join((r.stdout + r.stderr).splitlines()[-5:]))
    finally:
        shutil.rmtree(vdir, ignore_errors=True)


# ---- reinstall and uninstall ------------------------------------------------------------------


def test_reinstall_keeps_edited_config_and_uninstall_removes_the_rest():
    d = tempfile.mkdtemp(prefix="cachetoryd-uninstall-")
    try:
        make("install", d)
        conf = at(d, CONF)
        with open(conf, "a") as f:
            f.write("# edited by the operator\n")
        make("install", d)
        with open(conf) as f:
            assert f.read().endswith("# edited by the operator\n"), "reinstall overwrote an edited config"
        assert os.path.exists(conf + ".dist")
        out = make("uninstall", d)
        assert files_under(d) == {CONF}, (files_under(d), out)
        assert "keeping" in out
        os.unlink(conf)
        make("install", d)
        make("uninstall", d)
        assert files_under(d) == set()
        assert not os.path.exists(at(d, SYSCONFDIR + "/cachetoryd"))
        # GZIP_MAN=no: plain pages, and uninstall removes them too
        make("install", d, "GZIP_MAN=no")
        assert os.path.exists(at(d, MANDIR + "/man8/cachetoryd.8"))
        assert not os.path.exists(at(d, MAN8))
        make("uninstall", d)
        assert files_under(d) == set()
    finally:
        shutil.rmtree(d, ignore_errors=True)
