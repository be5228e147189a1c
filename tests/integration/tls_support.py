"""
Throwaway certificates for the TLS tests, made with the openssl command line; this module holds no test.

  Pki(dir)                      a directory holding CAs, keys and certificates
  pki.ca(name)                  a self-signed CA -> Cert (crt, key)
  pki.leaf(name, ca, ...)       a certificate signed by ca: server (localhost + 127.0.0.1 + ::1) or client,
                                with its validity window given in seconds from now (may lie in the past),
                                its key optionally encrypted with a pass phrase
  pki.bundle(name, *certs)      the certificates concatenated into one PEM file
  pki.hashed_dir(name, *cas)    a directory of CAs under their subject hashes (c_rehash), for *-ca-path
  tls_pki                       fixture (module scope): a Pki with a CA "ca", a server certificate "server"
                                and a client certificate "client", and a second CA "other" that signed
                                neither

  redis_tls_args(pki, port, ...)  redis-server options for a TLS port with pki's server certificate
  tls_context(pki, ...)         an ssl.SSLContext trusting pki's CA (and presenting a client certificate)

Leaf certificates are issued with `openssl ca` rather than `openssl x509 -req` because only it takes an
exact start and end time (-startdate / -enddate), which the expiry tests need: a certificate expired an
hour ago, or one that expires a few seconds into the test.
"""
import datetime
import os
import shutil
import ssl
import subprocess

import pytest

import conftest

OPENSSL = shutil.which("openssl") or "openssl"


def _run(*args, cwd=None):
    p = subprocess.run([OPENSSL] + list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed (%d):\n%s" % (" ".join(args), p.returncode,
                                                              p.stderr.decode("utf-8", "replace")))
    return p.stdout


def _stamp(seconds_from_now):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y%m%d%H%M%SZ")


class Cert:
    def __init__(self, crt, key, name, password=None):
        self.crt = crt                  # PEM certificate path
        self.key = key                  # PEM private key path
        self.name = name
        self.password = password        # pass phrase of an encrypted key, or None

    def __repr__(self):
        return "Cert(%s)" % self.name


class Pki:
    def __init__(self, directory=None):
        self.dir = directory or conftest.short_tmpdir()
        os.makedirs(self.dir, exist_ok=True)
        self.certs = {}

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def _key(self, name, password=None):
        key = self.path(name + ".key")
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", key)
        if password is not None:
            enc = self.path(name + ".enc.key")
            _run("pkey", "-in", key, "-aes256", "-passout", "pass:" + password, "-out", enc)
            return enc
        return key

    def ca(self, name, cn=None):
        """A self-signed CA certificate valid for ten years."""
        key = self._key(name)
        crt = self.path(name + ".crt")
        _run("req", "-x509", "-new", "-key", key, "-sha256", "-days", "3650", "-subj",
             "/O=cachetoryd tests/CN=%s" % (cn or name), "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", crt)
        # openssl ca's bookkeeping for this CA
        cadir = self.path(name + ".ca")
        os.makedirs(os.path.join(cadir, "new"), exist_ok=True)
        open(os.path.join(cadir, "index.txt"), "w").close()
        with open(os.path.join(cadir, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(cadir, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = the_ca\n[the_ca]\n"
                    "database = %s/index.txt\nnew_certs_dir = %s/new\nserial = %s/serial\n"
                    "default_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\n"
                    "[any]\ncommonName = supplied\norganizationName = optional\n" % (cadir, cadir, cadir))
        c = Cert(crt, key, name)
        self.certs[name] = c
        return c

    def leaf(self, name, ca, cn="localhost", hosts=("localhost", "127.0.0.1", "::1"), client=False,
             not_before=-3600, not_after=86400 * 30, password=None):
        """A certificate for cn signed by ca. hosts go into subjectAltName (DNS or IP); not_before and
        not_after are seconds from now (negative: in the past)."""
        key = self._key(name)
        csr = self.path(name + ".csr")
        _run("req", "-new", "-key", key, "-subj", "/O=cachetoryd tests/CN=%s" % cn, "-out", csr)
        sans = []
        for h in hosts:
            kind = "IP" if (h.replace(".", "").isdigit() or ":" in h) else "DNS"
            sans.append("%s:%s" % (kind, h))
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("[v3]\nbasicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage = %s\n" % ("clientAuth" if client else "serverAuth,clientAuth"))
            if sans:
                f.write("subjectAltName = %s\n" % ",".join(sans))
        crt = self.path(name + ".crt")
        cadir = self.path(ca.name + ".ca")
        _run("ca", "-batch", "-notext", "-config", os.path.join(cadir, "ca.cnf"), "-cert", ca.crt,
             "-keyfile", ca.key, "-in", csr, "-out", crt, "-startdate", _stamp(not_before),
             "-enddate", _stamp(not_after), "-extfile", ext, "-extensions", "v3")
        if password is not None:
            enc = self.path(name + ".enc.key")
            _run("pkey", "-in", key, "-aes256", "-passout", "pass:" + password, "-out", enc)
            key = enc
        c = Cert(crt, key, name, password)
        self.certs[name] = c
        return c

    def bundle(self, name, *certs):
        out = self.path(name + ".pem")
        with open(out, "wb") as f:
            for c in certs:
                with open(c.crt, "rb") as src:
                    f.write(src.read())
        return out

    def hashed_dir(self, name, *cas):
        """A CA directory as OpenSSL's -CApath wants it: <subject hash>.0 for each CA."""
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        for ca in cas:
            h = _run("x509", "-noout", "-subject_hash", "-in", ca.crt).decode().strip()
            shutil.copy(ca.crt, os.path.join(d, h + ".0"))
        return d


def make_pki():
    p = Pki()
    ca = p.ca("ca")
    p.leaf("server", ca)
    p.leaf("client", ca, cn="cachetoryd-client", hosts=(), client=True)
    p.ca("other")
    return p


@pytest.fixture(scope="module")
def tls_pki():
    return make_pki()


def redis_tls_args(pki, tls_port, server="server", ca="ca", auth_clients="no"):
    """redis-server options for a TLS port presenting pki's certificate `server`."""
    return ["--tls-port", str(tls_port), "--tls-cert-file", pki.certs[server].crt,
            "--tls-key-file", pki.certs[server].key, "--tls-ca-cert-file", pki.certs[ca].crt,
            "--tls-auth-clients", auth_clients]


def tls_context(pki, ca="ca", client=None, check_hostname=True):
    """A client-side SSLContext trusting pki's CA `ca`, presenting certificate `client` if given."""
    ctx = ssl.create_default_context(cafile=pki.certs[ca].crt)
    ctx.check_hostname = check_hostname
    if client is not None:
        c = pki.certs[client]
        ctx.load_cert_chain(c.crt, c.key, password=c.password)
    return ctx
