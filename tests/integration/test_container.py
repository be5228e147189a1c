"""The container image and the sidecar example (issue 18): make static, make image, deploy/kubernetes.yaml.

- The static binary resolves host names with no NSS module: in an empty chroot, inside a network
  namespace of its own, a name from /etc/hosts (--ping) and a name answered by a DNS responder on
  127.0.0.1:53 (the --backend upstream) both work. Needs root (unshare, chroot), not podman.
- The image: its size (figures: uncompressed, and its layer gzip -9 as a registry stores it), a run with
  SET/GET from the host through a published port, --ping inside it, the numeric non-root user.
- deploy/kubernetes.yaml played by `podman kube play`, with a test image (Debian's redis-server,
  redis-cli and sleep with their shared libraries, FROM scratch) as the app and as the redis container:
  a value the app writes through the sidecar lands zstd-compressed in redis.
- `podman stop` under load: every write the daemon acknowledged is in the upstream afterwards.

Every podman test is skipped, with the reason printed, only when podman cannot run at all (not
installed, or `podman info` fails). Containers, pods and images are named after this process and removed
by name. Nothing is pulled: images are built FROM scratch from local files (--pull=never), and podman is
given a containers.conf of its own (runtime runc, ulimits within the host's hard limits, catatonit for
the pods' pause process).
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib

import pytest

from conftest import REPO, free_port
from helpers import Conn, encode_command, report_figure, wait_until

SUFFIX = "t%d" % os.getpid()
IMAGE = "localhost/cachetoryd-test-%s:latest" % SUFFIX
TOOLS_IMAGE = "localhost/cachetoryd-test-tools-%s:latest" % SUFFIX
STATIC_BIN = os.path.join(REPO, "build-static", "cachetoryd")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CMD_TIMEOUT = 120


def _nofile():
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return min(4096, hard) if hard != resource.RLIM_INFINITY else 4096


def _podman_env(tmp):
    """Environment for every podman call: a containers.conf of this test's own."""
    conf = os.path.join(tmp, "containers.conf")
    n = _nofile()
    with open(conf, "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=%d:%d", "nproc=4096:4096"]\n'
                '[engine]\nruntime = "runc"\n'
                'helper_binaries_dir = ["/usr/bin", "/usr/libexec/podman", "/usr/lib/podman",'
                ' "/usr/local/libexec/podman"]\n' % (n, n))
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = conf
    return env


class Podman:
    def __init__(self, tmp):
        self.tmp = tmp
        self.env = _podman_env(tmp)

    def run(self, *args, check=True, timeout=CMD_TIMEOUT, input=None):
        r = subprocess.run(["podman", *args], env=self.env, capture_output=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError("podman %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                            r.stdout.decode(errors="replace")[-2000:],
                                                            r.stderr.decode(errors="replace")[-2000:]))
        return r

    def out(self, *args, **kw):
        return self.run(*args, **kw).stdout.decode().strip()


def _why_podman_cannot_run():
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/install-deps.sh installs it)"
    tmp = tempfile.mkdtemp(prefix="cachetoryd-podman-")
    try:
        r = subprocess.run(["podman", "info"], env=_podman_env(tmp), capture_output=True, timeout=60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if r.returncode != 0:
        return "podman info fails: %s" % r.stderr.decode(errors="replace").strip()[-500:]
    return None


@pytest.fixture(scope="module")
def podman():
    why = _why_podman_cannot_run()
    if why:
        print("test_container: skipped: " + why)
        pytest.skip(why)
    tmp = tempfile.mkdtemp(prefix="cachetoryd-podman-")
    p = Podman(tmp)
    # podman kube play builds a pause image (from catatonit) when there is none: remove it if it was us
    pause_before = p.out("images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/podman-pause")
    yield p
    if not pause_before:
        for img in p.out("images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/podman-pause").split():
            p.run("rmi", img, check=False)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def static_bin():
    r = subprocess.run(["make", "--no-print-directory", "-C", REPO, "static"], capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    return STATIC_BIN


@pytest.fixture(scope="module")
def image(podman, static_bin):
    r = subprocess.run(["make", "--no-print-directory", "-C", REPO, "image", "IMAGE=" + IMAGE,
                        "CONTAINER_ENGINE=podman"], env=podman.env, capture_output=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")[-3000:]
    yield IMAGE
    podman.run("rmi", "-f", IMAGE, check=False)


def _copy_with_libs(root, binary):
    """Copy a dynamically linked binary and every shared library ldd names (and the loader) into root."""
    paths = [binary]
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            paths.append(parts[2])
        elif parts and parts[0].startswith("/"):
            paths.append(parts[0])
    for p in paths:
        dest = os.path.join(root, p.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.realpath(p), dest)


@pytest.fixture(scope="module")
def tools_image(podman):
    """redis-server, redis-cli and sleep (as /usr/bin/NAME) from this Debian host, with their libraries, FROM scratch."""
    ctx = os.path.join(podman.tmp, "tools")
    os.makedirs(ctx)
    for b in ("redis-server", "redis-cli", "sleep"):
        path = shutil.which(b)
        assert path, "%s is not installed" % b
        _copy_with_libs(os.path.join(ctx, "root"), path)
        if path != "/usr/bin/" + b:                 # the manifest names /usr/bin/NAME
            _copy_with_libs(os.path.join(ctx, "root"), path)
            os.makedirs(os.path.join(ctx, "root", "usr", "bin"), exist_ok=True)
            shutil.copy2(path, os.path.join(ctx, "root", "usr", "bin", b))
    with open(os.path.join(ctx, "Containerfile"), "w") as f:
        f.write("FROM scratch\nCOPY root/ /\n")
    podman.run("build", "--pull=never", "--layers=false", "-t", TOOLS_IMAGE, ctx, timeout=300)
    yield TOOLS_IMAGE
    podman.run("rmi", "-f", TOOLS_IMAGE, check=False)


def _wait_ping(addr, timeout=20):
    def ok():
        try:
            with Conn(addr, timeout=1) as c:
                return c.cmd("PING") == "PONG"
        except OSError:
            return False
    assert wait_until(ok, timeout), "no PONG from %s:%d within %ds" % (addr[0], addr[1], timeout)


@pytest.fixture
def redis_upstream(tmp_path):
    port = free_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(tmp_path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ping(("127.0.0.1", port), 10)
        yield ("127.0.0.1", port)
    finally:
        p.terminate()
        p.wait(10)


# ---- the static binary without NSS modules --------------------------------------------------------

NETNS_SCRIPT = r'''
import json, socket, struct, subprocess, sys, threading, time
root, redis_port, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
asked = []

def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))
    while True:
        q, a = s.recvfrom(512)
        qid, flags = struct.unpack("!HH", q[:4])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
        qname = ".".join(labels); qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        asked.append([qname, qtype])
        if qname == "upstream-by-dns.test" and qtype == 1:
            ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton("127.0.0.1")
            s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + ans, a)
        elif qname == "upstream-by-dns.test":
            s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question, a)
        else:
            s.sendto(struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question, a)

threading.Thread(target=dns, daemon=True).start()
redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", root], stdout=subprocess.DEVNULL)
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.05)
daemon = subprocess.Popen(["chroot", root, "/cachetoryd", "--port", str(port), "--backend",
                           "redis://upstream-by-dns.test:%d/0" % redis_port], stderr=subprocess.PIPE)
res = {}
def cmd(p, *args):
    c = socket.create_connection(("127.0.0.1", p), timeout=5)
    c.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    data = b""
    while not data.endswith(b"\r\n") or (data.startswith(b"$") and not data.startswith(b"$-")
                                           and data.count(b"\r\n") < 2):
        d = c.recv(4096)
        if not d: break
        data += d
    c.close()
    return data
try:
    for _ in range(100):
        if subprocess.run(["chroot", root, "/cachetoryd", "--ping", "daemon-by-hosts.test:%d" % port,
                           "--timeout", "500"], capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    r = subprocess.run(["chroot", root, "/cachetoryd", "--ping", "daemon-by-hosts.test:%d" % port],
                       capture_output=True, text=True)
    res["ping_hosts"] = [r.returncode, r.stdout + r.stderr]
    r = subprocess.run(["chroot", root, "/cachetoryd", "--ping", "nowhere.test:%d" % port],
                       capture_output=True, text=True)
    res["ping_unknown"] = [r.returncode, r.stderr]
    res["set"] = cmd(port, b"SET", b"resolved", b"through-dns").decode()
    res["upstream_get"] = cmd(redis_port, b"GET", b"resolved").decode()
finally:
    daemon.terminate(); redis.terminate()
    daemon.wait(10); redis.wait(10)
res["asked"] = asked
res["daemon_log"] = daemon.stderr.read().decode(errors="replace")[-1500:]
print(json.dumps(res))
'''


def test_static_binary_resolves_names_without_nss(static_bin, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (unshare --net, chroot)")
    for tool in ("unshare", "chroot", "ip", "redis-server"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed" % tool)
    out = subprocess.run(["file", "-L", static_bin], capture_output=True, text=True).stdout
    assert "statically linked" in out, out
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    shutil.copy2(static_bin, root / "cachetoryd")
    (root / "etc" / "hosts").write_text("127.0.0.1 daemon-by-hosts.test\n")
    (root / "etc" / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    # nothing else: no libc.so, no libnss_*.so, no nsswitch.conf (glibc's default: dns, then files)
    assert sorted(os.listdir(root)) == ["cachetoryd", "etc"]
    script = tmp_path / "netns.py"
    script.write_text(NETNS_SCRIPT)
    r = subprocess.run(["unshare", "--net", "--", sys.executable, str(script), str(root), "6398", "6399"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["ping_hosts"][0] == 0, res
    assert res["ping_unknown"][0] == 1 and "cannot resolve nowhere.test" in res["ping_unknown"][1], res
    assert res["set"] == "+OK\r\n", res
    assert res["upstream_get"] == "$11\r\nthrough-dns\r\n", res
    assert ["upstream-by-dns.test", 1] in res["asked"], res


# ---- the image ------------------------------------------------------------------------------------

def test_image_size_run_and_set_get(podman, image, tmp_path):
    size = int(podman.out("image", "inspect", "--format", "{{.Size}}", image))
    # the layer as a registry would store it: its tar, gzip -9
    archive = tmp_path / "image.tar"
    podman.run("save", "--format", "docker-archive", "-o", str(archive), image)
    gz = 0
    with tarfile.open(archive) as t:
        layers = json.load(t.extractfile("manifest.json"))[0]["Layers"]
        assert layers, [m.name for m in t.getmembers()]
        for name in layers:
            data = t.extractfile(name).read()       # a symbolic link to the blob is followed
            co = zlib.compressobj(9, zlib.DEFLATED, 31)
            gz += len(co.compress(data) + co.flush())
    report_figure("container image size (uncompressed)", size, "bytes")
    report_figure("container image size (layers, gzip -9)", gz, "bytes")
    print("image %s: %d bytes, %d bytes gzip -9" % (image, size, gz))
    assert size < 8 * 1000 * 1000
    assert gz <= 3 * 1000 * 1000, "compressed image over the issue's 3 MB target"
    assert podman.out("image", "inspect", "--format", "{{.Config.User}}", image) == "65532:65532"

    name = "cachetoryd-test-run-" + SUFFIX
    port = free_port()
    podman.run("run", "-d", "--name", name, "--pull=never", "-p", "127.0.0.1:%d:6380" % port, image,
               "--bind", "0.0.0.0")
    try:
        _wait_ping(("127.0.0.1", port))
        with Conn(("127.0.0.1", port)) as c:
            assert c.cmd("SET", "from-host", "value-1") == "OK"
            assert c.cmd("GET", "from-host") == b"value-1"
        r = podman.run("exec", name, "/cachetoryd", "--ping", "127.0.0.1:6380")
        assert r.stdout == b"PONG\n"
        r = podman.run("exec", name, "/cachetoryd", "--ping", "127.0.0.1:1", check=False)
        assert r.returncode == 1 and b"cannot connect" in r.stderr
        pid = podman.out("inspect", "--format", "{{.State.Pid}}", name)
        with open("/proc/%s/status" % pid) as f:
            uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
        assert uid == "65532"
        podman.run("stop", "-t", "10", name)
        assert podman.out("inspect", "--format", "{{.State.ExitCode}}", name) == "0"
        assert "received SIGTERM" in podman.run("logs", name).stderr.decode()
    finally:
        podman.run("rm", "-f", name, check=False)


# ---- the Kubernetes example -----------------------------------------------------------------------

def _kube_variant(tools, image, name, password, secret_dir):
    """deploy/kubernetes.yaml for podman kube play: the Deployment only (podman 4.3 has no Secret kind:
    the secret volume becomes a hostPath directory holding the same file, secret_dir), the sidecar among
    the containers (podman 4.3 runs an init container to its end before the others, whatever its
    restartPolicy), the upstream a redis container of the pod, the app a container with redis-cli."""
    import yaml                                     # python3-yaml (scripts/install-deps.sh)
    with open(os.path.join(REPO, "deploy", "kubernetes.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    secret = next(d for d in docs if d["kind"] == "Secret")
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert secret["metadata"]["name"] == "cachetoryd-upstream"
    spec = dep["spec"]["template"]["spec"]
    side = spec.pop("initContainers")[0]
    assert side["restartPolicy"] == "Always" and side["name"] == "cachetoryd"
    assert any("127.0.0.1:6380" in str(e.get("value")) for e in spec["containers"][0]["env"])
    del side["restartPolicy"]
    side["image"] = image
    vol = next(v for v in spec["volumes"] if v["name"] == "upstream-secret")
    assert vol["secret"]["secretName"] == "cachetoryd-upstream"
    key = next(iter(secret["stringData"]))
    mount = next(m for m in side["volumeMounts"] if m["name"] == "upstream-secret")
    i = side["args"].index("--upstream-password-file")
    assert side["args"][i + 1] == mount["mountPath"] + "/" + key
    os.makedirs(secret_dir, exist_ok=True)
    with open(os.path.join(secret_dir, key), "w") as f:
        f.write(password + "\n")
    os.chmod(os.path.join(secret_dir, key), 0o644)
    os.chmod(secret_dir, 0o755)
    del vol["secret"]
    vol["hostPath"] = {"path": str(secret_dir), "type": "Directory"}
    i = side["args"].index("--backend")
    assert side["args"][i + 1] == "redis://redis:6379/0"
    side["args"][i + 1] = "redis://127.0.0.1:6379/0"     # the pod's redis container: the same loopback
    app = spec["containers"][0]
    app["image"] = tools
    app["command"] = ["/usr/bin/sleep", "300"]
    redis = {"name": "redis", "image": tools,
             "command": ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                         "--appendonly", "no", "--dir", "/", "--requirepass", password]}
    spec["containers"] = [redis, side, app]
    dep["metadata"]["name"] = name
    dep["metadata"]["labels"] = dep["spec"]["selector"]["matchLabels"] = \
        dep["spec"]["template"]["metadata"]["labels"] = {"app": name}
    return yaml.safe_dump(dep)


def test_kube_play_sidecar_compresses_into_redis(podman, image, tools_image, tmp_path):
    name = "ctest" + SUFFIX
    password = "pw-" + SUFFIX
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(_kube_variant(tools_image, image, name, password, tmp_path / "secret"))
    try:
        podman.run("kube", "play", str(manifest), timeout=180)
        # a Deployment's pod is NAME-pod-0 for podman 4.3, NAME-pod for later ones
        pods = podman.out("pod", "ls", "--format", "{{.Name}}").split()
        pod = next(p for p in pods if p in (name + "-pod", name + "-pod-0"))
        app, redis, side = pod + "-app", pod + "-redis", pod + "-cachetoryd"

        def app_cli(*args, check=True):
            return podman.run("exec", app, "/usr/bin/redis-cli", "-h", "127.0.0.1", "-p", "6380", *args,
                              check=check)

        def why():
            last = app_cli("PING", check=False)
            return "app's PING: %r %r\n%s\nsidecar's log:\n%s" % (
                last.stdout, last.stderr, podman.out("ps", "-a", "--pod"),
                podman.run("logs", side, check=False).stderr.decode(errors="replace")[-3000:])

        assert wait_until(lambda: app_cli("PING", check=False).stdout == b"PONG\n", 30), why()
        # readiness: the upstream answers through the sidecar (redis may start after it)
        assert wait_until(lambda: podman.run("exec", side, "/cachetoryd", "--ping", "127.0.0.1:6380",
                                             "--upstream", check=False).returncode == 0, 30), why()
        value = ("greeting from the app, " * 100).encode()
        r = podman.run("exec", "-i", app, "/usr/bin/redis-cli", "-h", "127.0.0.1", "-p", "6380", "-x", "SET",
                       "app:greeting", input=value)
        assert r.stdout == b"OK\n"
        assert app_cli("GET", "app:greeting").stdout == value + b"\n"
        stored = podman.run("exec", redis, "/usr/bin/redis-cli", "-p", "6379", "-a", password,
                            "--no-auth-warning", "GET", "app:greeting").stdout[:-1]
        assert stored[:4] == ZSTD_MAGIC, stored[:16]
        assert len(stored) < len(value) // 4
        report_figure("kube play: app value through the sidecar, stored in redis", "%d -> %d" % (len(value), len(stored)),
                      "bytes (zstd)")
    finally:
        podman.run("kube", "down", str(manifest), check=False)
        for p in (name + "-pod", name + "-pod-0"):
            podman.run("pod", "rm", "-f", p, check=False)


# ---- podman stop under load -----------------------------------------------------------------------

def test_podman_stop_under_load_loses_no_acknowledged_write(podman, image, redis_upstream):
    name = "cachetoryd-test-stop-" + SUFFIX
    port = free_port()
    podman.run("run", "-d", "--name", name, "--pull=never", "--network", "host", image,
               "--port", str(port), "--backend", "redis://127.0.0.1:%d/0" % redis_upstream[1])
    acked = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 20

    def writer(w):
        mine = []
        try:
            with Conn(("127.0.0.1", port), timeout=5) as c:
                for batch in range(2000):
                    if time.monotonic() > stop_at:
                        break
                    keys = ["load:%d:%d:%d" % (w, batch, i) for i in range(20)]
                    c.send(b"".join(encode_command("SET", k, k + ":v") for k in keys))
                    for k in keys:
                        if c.read_reply() == "OK":
                            mine.append(k)
        except Exception:
            pass                            # the daemon went away: what was acknowledged is in mine
        with lock:
            acked.extend(mine)

    try:
        _wait_ping(("127.0.0.1", port))
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        assert wait_until(lambda: int(Conn(("127.0.0.1", redis_upstream[1])).cmd("DBSIZE")) > 2000, 15)
        t0 = time.monotonic()
        podman.run("stop", "-t", "15", name)
        stop_s = time.monotonic() - t0
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        assert podman.out("inspect", "--format", "{{.State.ExitCode}}", name) == "0"
        with Conn(("127.0.0.1", redis_upstream[1])) as r:
            missing = []
            for i in range(0, len(acked), 500):
                chunk = acked[i:i + 500]
                vals = r.cmd("MGET", *chunk)
                missing += [k for k, v in zip(chunk, vals) if v != (k + ":v").encode()]
        report_figure("podman stop under load: acknowledged writes checked", len(acked))
        report_figure("podman stop under load: stop took", "%.2f" % stop_s, "s")
        assert len(acked) > 2000
        assert not missing, "%d acknowledged writes missing, e.g. %s" % (len(missing), missing[:5])
    finally:
        podman.run("rm", "-f", name, check=False)
