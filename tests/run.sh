#!/usr/bin/env bash
# Run every test of cachetoryd and end with one line: "N passed, M failed".
#
#   tests/run.sh [PYTEST-ARGS...]      BUILD=build by default; extra arguments go to pytest
#
# 0. scripts/check-layout (one result): modules include only the layers below them, no file over 900 lines
#    without a stated reason.
# 1. each unit test binary $BUILD/tests/test_* (cmocka): its "[  PASSED  ] N test(s)." and
#    "[  FAILED  ] M test(s)" summary lines are added up; a binary that crashes, times out, or exits
#    non-zero without saying how many tests failed counts as one failure more.
# 2. the integration suite: /usr/bin/python3 -m pytest -p no:cacheprovider -q tests/integration, counted
#    from its junit XML (errors count as failures), or from pytest's last line if there is no XML.
# 3. smoke checks, one result each: the fuzz corpora replayed, scripts/bench --quick, and a few
#    integration files under valgrind (VALGRIND=1 below).
# Exit status: non-zero if anything failed or crashed, or if no test ran at all.
#
# VALGRIND=1 (make test VALGRIND=1): each unit test binary runs under valgrind (a memory error or a
# definite leak fails it), and so does every daemon of the integration suite (tests/integration/conftest.py:
# the test that used the daemon fails, quoting valgrind's report; tests marked `timing` or `long_double`
# are deselected and counted). The time limits grow; the smoke checks are skipped. Unit test binaries
# that assert time bounds (UNIT_NO_VALGRIND) run natively, and are listed at the end.
set -u

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
# Under AddressSanitizer freed memory waits in a quarantine (256 MB by default), which the tests that
# bound the daemon's memory would read as growth: keep it small.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:detect_leaks=1}
PYTHON=${PYTHON:-/usr/bin/python3}
case ${VALGRIND:-} in
'' | 0 | no | false) VALGRIND= ;;
*) VALGRIND=1 ;;
esac
export VALGRIND
if [[ -n $VALGRIND ]]; then
    UNIT_TIMEOUT=${UNIT_TIMEOUT:-3600}
    IT_TIMEOUT=${IT_TIMEOUT:-5400}
else
    UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
    IT_TIMEOUT=${IT_TIMEOUT:-900}
fi
# valgrind for the unit tests; the integration suite's conftest.py has the same options
VALGRIND_CMD=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite
              --show-leak-kinds=definite --num-callers=30)
# unit test binaries that run natively under VALGRIND=1: they assert time bounds
# (test_codec_pickle: test_malicious_memo_bomb decodes in under 5 s)
UNIT_NO_VALGRIND=(test_codec_pickle)

passed=0
failed=0
skipped=0
problems=()
native_units=()

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cachetoryd-tests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# true if the binary is built with a sanitizer (make SANITIZER=...): valgrind is for the plain build
sanitizer_binary() {
    grep -qa -e __asan_init -e __ubsan_handle "$1" 2>/dev/null
}

if [[ -n $VALGRIND ]]; then
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "VALGRIND=1: valgrind is not installed (scripts/install-deps.sh installs it)"
        echo "0 passed, 1 failed"
        exit 1
    fi
    if sanitizer_binary "${CACHETORYD_BIN:-$BUILD/cachetoryd}"; then
        echo "VALGRIND=1: ${CACHETORYD_BIN:-$BUILD/cachetoryd} is built with a sanitizer; valgrind needs the plain build"
        echo "0 passed, 1 failed"
        exit 1
    fi
    echo "=== VALGRIND=1: unit tests and integration daemons under ${VALGRIND_CMD[*]}"
fi

# ---- the source layout: one result ------------------------------------------------------------
# scripts/check-layout: modules include only the layers below them (no include cycle between the folders
# of src/), no source file over 900 lines without a stated reason.
echo "=== layout: scripts/check-layout"
if layout_out=$("$PYTHON" scripts/check-layout 2>&1); then
    passed=$((passed + 1))
    echo "$layout_out" | tail -n 1 | sed 's/^/    /'
else
    failed=$((failed + 1))
    problems+=("layout: scripts/check-layout found problems (listed above)")
    echo "$layout_out" | sed 's/^/    /'
fi

# ---- unit tests -------------------------------------------------------------------------------
shopt -s nullglob
unit_bins=()
for f in "$BUILD"/tests/test_*; do
    [[ -f $f && -x $f ]] && unit_bins+=("$f")
done
shopt -u nullglob

for bin in "${unit_bins[@]}"; do
    name=$(basename "$bin")
    echo "=== unit: $name"
    out="$tmp/$name.out"
    vglog="$tmp/$name.valgrind"
    run=("$bin")
    under_valgrind=
    if [[ -n $VALGRIND ]]; then
        if [[ " ${UNIT_NO_VALGRIND[*]} " == *" $name "* ]]; then
            echo "    (not under valgrind: it asserts time bounds)"
            native_units+=("$name")
        else
            under_valgrind=1
            run=("${VALGRIND_CMD[@]}" --log-file="$vglog" "$bin")
        fi
    fi
    # cmocka writes its standard summary to stdout; keep it out of XML/TAP mode
    CMOCKA_MESSAGE_OUTPUT=STDOUT timeout -k 10 "$UNIT_TIMEOUT" "${run[@]}" >"$out" 2>&1
    rc=$?
    cat "$out"
    p=0
    f=0
    noted=0
    while IFS= read -r line; do
        if [[ $line =~ ^\[\ \ PASSED\ \ \]\ ([0-9]+)\ test ]]; then
            p=$((p + BASH_REMATCH[1]))
        elif [[ $line =~ ^\[\ \ FAILED\ \ \]\ ([0-9]+)\ test ]]; then
            f=$((f + BASH_REMATCH[1]))
        fi
    done <"$out"
    if ((rc != 0 && f == 0)); then
        # crashed (signal), timed out, or failed without a cmocka summary
        f=1
        noted=1
        if ((rc == 124 || rc == 137)); then
            problems+=("$name: timed out after ${UNIT_TIMEOUT}s")
        elif ((rc > 128)); then
            problems+=("$name: crashed (signal $((rc - 128)))")
        else
            problems+=("$name: exited with status $rc without a failure count")
        fi
    elif ((rc == 0 && f > 0)); then
        problems+=("$name: reported $f failure(s) but exited 0")
    fi
    if ((p == 0 && f == 0)); then
        problems+=("$name: ran no test")
        f=1
        noted=1
    fi
    ((f > 0 && !noted)) && problems+=("$name: $f failed")
    if [[ -n $under_valgrind ]]; then
        # valgrind's verdict: "ERROR SUMMARY: N errors" (definite leaks included); none if it was killed
        vgerr=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$vglog" 2>/dev/null | tail -n 1)
        if [[ -z $vgerr ]]; then
            problems+=("$name: no valgrind summary in its log (killed or timed out)")
            ((f == 0)) && f=1
        elif ((vgerr > 0)); then
            echo "--- valgrind: $vgerr error(s) in $name:"
            sed -e 's/^==[0-9]*== \{0,1\}//' "$vglog" |
                grep -v -e '^Memcheck, a memory' -e '^Copyright' -e '^Using Valgrind' -e '^Command:' -e '^Parent PID' \
                    -e '^HEAP SUMMARY' -e '^ *in use at exit' -e '^ *total heap usage' -e '^For lists of' \
                    -e '^Reachable blocks' -e '^To see them' | cat -s | head -n 300
            problems+=("$name: valgrind reported $vgerr error(s) (memory errors or definite leaks)")
            f=$((f + 1))
        fi
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done
((${#unit_bins[@]} == 0)) && echo "=== unit: no test binary in $BUILD/tests (run make unit)"

# ---- integration tests ------------------------------------------------------------------------
echo "=== integration: $PYTHON -m pytest -p no:cacheprovider -q tests/integration $*"
junit="$tmp/junit.xml"
itout="$tmp/pytest.out"
figures="$tmp/figures.txt"
BUILD="$BUILD" CACHETORYD_BIN="${CACHETORYD_BIN:-$BUILD/cachetoryd}" CACHETORYD_FIGURES="$figures" \
    timeout -k 10 "$IT_TIMEOUT" "$PYTHON" -m pytest -p no:cacheprovider -q \
    --junitxml="$junit" -o junit_family=xunit2 tests/integration "$@" 2>&1 | tee "$itout"
prc=${PIPESTATUS[0]}

ip=0
if_=0
is=0
counted=0
if [[ -s $junit ]]; then
    if read -r ip if_ is < <("$PYTHON" - "$junit" <<'EOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = e = s = 0
for su in suites:
    t += int(su.get("tests", 0)); f += int(su.get("failures", 0))
    e += int(su.get("errors", 0)); s += int(su.get("skipped", 0))
print(t - f - e - s, f + e, s)
EOF
    ); then
        counted=1
    fi
fi
if ((!counted)); then
    # fall back to pytest's last line: "3 failed, 40 passed, 1 skipped, 2 errors in 12.3s"
    last=$(grep -E '[0-9]+ (passed|failed|errors?|skipped)' "$itout" | tail -n 1)
    [[ $last =~ ([0-9]+)\ passed ]] && ip=${BASH_REMATCH[1]}
    [[ $last =~ ([0-9]+)\ failed ]] && if_=$((if_ + BASH_REMATCH[1]))
    [[ $last =~ ([0-9]+)\ error ]] && if_=$((if_ + BASH_REMATCH[1]))
    [[ $last =~ ([0-9]+)\ skipped ]] && is=${BASH_REMATCH[1]}
fi
case $prc in
    0) ;;
    1) ((if_ == 0)) && { if_=1; problems+=("pytest: exit 1 with no failure counted"); } ;;
    5) problems+=("pytest: no integration test collected"); if_=$((if_ + 1)) ;;
    124 | 137) problems+=("pytest: timed out after ${IT_TIMEOUT}s"); if_=$((if_ + 1)) ;;
    *) problems+=("pytest: exit status $prc (interrupted, internal or usage error)"); if_=$((if_ + 1)) ;;
esac
((if_ > 0)) && problems+=("integration: $if_ failed")
# conftest.py's lines "N tests deselected under VALGRIND=1: ..." (printed at the start and at the end)
deselected=$(grep -E '^[0-9]+ tests deselected under VALGRIND=1' "$itout" | awk '!seen[$0]++')
passed=$((passed + ip))
failed=$((failed + if_))
skipped=$((skipped + is))

# ---- smoke checks: each is one test ------------------------------------------------------------
# The fuzz corpora replayed through every harness (no libFuzzer needed), the benchmark script once
# in --quick mode (no thresholds: the figures belong to the full run's report), and a few integration
# files (memory backend, codecs, upstream, transactions) under valgrind, so that VALGRIND=1 keeps working.
smoke() {
    local name=$1
    shift
    echo "=== smoke: $name: $*"
    if timeout -k 10 600 "$@" >"$tmp/smoke-$name.out" 2>&1; then
        passed=$((passed + 1))
        tail -n 3 "$tmp/smoke-$name.out" | sed 's/^/    /'
    else
        failed=$((failed + 1))
        problems+=("smoke $name: failed (last lines below)")
        tail -n 30 "$tmp/smoke-$name.out" | sed 's/^/    /'
    fi
}
# about 90 s on 2 cores: the memory backend, transactions, codecs through every command, an upstream
VALGRIND_SMOKE_FILES=(test_strings.py test_keyspace.py test_transactions.py test_codec_commands.py
                      test_upstream_storage.py)
if [[ -n ${CACHETORYD_NO_SMOKE:-} ]]; then
    :
elif [[ -n $VALGRIND ]]; then
    echo "=== smoke: skipped under VALGRIND=1 (fuzz-replay, bench-quick, valgrind subset)"
else
    smoke fuzz-replay make --no-print-directory fuzz-replay BUILD="$BUILD"
    smoke bench-quick scripts/bench --quick --no-install --bin "$BUILD/cachetoryd" --out "$tmp/bench"
    if sanitizer_binary "${CACHETORYD_BIN:-$BUILD/cachetoryd}"; then
        echo "=== smoke: valgrind: skipped (a sanitizer build; the plain build's make test runs it)"
    elif ! command -v valgrind >/dev/null 2>&1; then
        echo "=== smoke: valgrind: valgrind is not installed (scripts/install-deps.sh installs it)"
        failed=$((failed + 1))
        problems+=("smoke valgrind: valgrind is not installed")
    else
        smoke valgrind env VALGRIND=1 BUILD="$BUILD" CACHETORYD_BIN="${CACHETORYD_BIN:-$BUILD/cachetoryd}" \
            "$PYTHON" -m pytest -p no:cacheprovider -q "${VALGRIND_SMOKE_FILES[@]/#/tests/integration/}"
    fi
fi

# ---- summary ----------------------------------------------------------------------------------
if [[ -s $figures ]]; then
    echo "=== figures measured by the integration tests (helpers.report_figure):"
    sort "$figures" | sed 's/^/  /'
fi
status=0
if ((${#problems[@]} > 0)); then
    echo "=== problems:"
    printf '  %s\n' "${problems[@]}"
fi
((skipped > 0)) && echo "=== $skipped skipped"
[[ -n $deselected ]] && sed 's/^/=== /' <<<"$deselected"
((${#native_units[@]} > 0)) && echo "=== unit tests run without valgrind under VALGRIND=1 (time bounds): ${native_units[*]}"
if ((passed + failed == 0)); then
    echo "=== no test ran"
    status=1
fi
((failed > 0)) && status=1
echo "$passed passed, $failed failed"
exit $status
