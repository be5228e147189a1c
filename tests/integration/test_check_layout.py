"""
scripts/check-layout, the check that keeps src/'s layers (make check; tests/run.sh runs it on the real
tree): here it runs on small trees made for the purpose, to show that it fails on what it must refuse.
"""
import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "check-layout")


def write(tree, rel, text):
    path = os.path.join(tree, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def run(tree):
    p = subprocess.run([sys.executable, SCRIPT, "--graph", str(tree)], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


def base_tree(tmp_path):
    write(tmp_path, "util/buf.h", "#pragma once\n")
    write(tmp_path, "resp/parse.h", '#include "util/buf.h"\n')
    write(tmp_path, "net/conn.c", '#include "net/conn.h"\n#include "resp/parse.h"\n')
    write(tmp_path, "net/conn.h", '#include "util/buf.h"\n')
    write(tmp_path, "cmd/table.c", '#include "net/conn.h"\n#include "backend/backend.h"\n')
    write(tmp_path, "backend/backend.h", '#include "util/buf.h"\n')
    write(tmp_path, "backend/redis/pool.c", '#include "backend/backend.h"\n#include "net/conn.h"\n')
    write(tmp_path, "main.c", '#include "cmd/cmd.h"\n#include "config.h"\n')
    write(tmp_path, "config.h", '#include "url.h"\n')
    return tmp_path


def test_downward_includes_pass(tmp_path):
    rc, out = run(base_tree(tmp_path))
    assert rc == 0, out
    assert "cmd -> backend net" in out
    assert "all downward" in out


def test_a_lower_layer_including_a_higher_one_fails(tmp_path):
    tree = base_tree(tmp_path)
    write(tree, "net/conn.c", '#include "net/conn.h"\n#include "cmd/cmd.h"\n')
    rc, out = run(tree)
    assert rc == 1, out
    assert 'src/net/conn.c:2: net includes "cmd/cmd.h", a higher layer (cmd)' in out


def test_peers_including_each_other_fail(tmp_path):
    tree = base_tree(tmp_path)
    write(tree, "codec/chain.c", '#include "backend/backend.h"\n')
    rc, out = run(tree)
    assert rc == 1, out
    assert 'codec includes "backend/backend.h", a peer (backend)' in out


def test_an_unlisted_folder_fails(tmp_path):
    tree = base_tree(tmp_path)
    write(tree, "store/store.h", '#include "util/buf.h"\n')
    rc, out = run(tree)
    assert rc == 1, out
    assert "module 'store' is not in scripts/check-layout's LAYERS" in out


def test_a_long_file_needs_a_reason(tmp_path):
    tree = base_tree(tmp_path)
    write(tree, "cmd/big.c", "/* cmd/big: commands */\n" + "int x;\n" * 950)
    rc, out = run(tree)
    assert rc == 1, out
    assert "src/cmd/big.c: 951 lines (over 900)" in out
    write(tree, "cmd/big.c", "/* cmd/big: commands\n * Longer than 900 lines: one dispatch switch. */\n"
          + "int x;\n" * 950)
    rc, out = run(tree)
    assert rc == 0, out

