#!/usr/bin/env bash
# Run every test of cachetoryd and end with one line: "N passed, M failed".
#
#   tests/run.sh [PYTEST-ARGS...]      BUILD=build by default; extra arguments go to pytest
#
# 1. each unit test binary $BUILD/tests/test_* (cmocka): its "[  PASSED  ] N test(s)." and
#    "[  FAILED  ] M test(s)" summary lines are added up; a binary that crashes, times out, or exits
#    non-zero without saying how many tests failed counts as one failure more.
# 2. the integration suite: /usr/bin/python3 -m pytest -p no:cacheprovider -q tests/integration, counted
#    from its junit XML (errors count as failures), or from pytest's last line if there is no XML.
# Exit status: non-zero if anything failed or crashed, or if no test ran at all.
set -u

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
# Under AddressSanitizer freed memory waits in a quarantine (256 MB by default), which the tests that
# bound the daemon's memory would read as growth: keep it small.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:detect_leaks=1}
PYTHON=${PYTHON:-/usr/bin/python3}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
IT_TIMEOUT=${IT_TIMEOUT:-900}

passed=0
failed=0
skipped=0
problems=()

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cachetoryd-tests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

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
    # cmocka writes its standard summary to stdout; keep it out of XML/TAP mode
    CMOCKA_MESSAGE_OUTPUT=STDOUT timeout -k 10 "$UNIT_TIMEOUT" "$bin" >"$out" 2>&1
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
passed=$((passed + ip))
failed=$((failed + if_))
skipped=$((skipped + is))

# ---- smoke checks: each is one test ------------------------------------------------------------
# The fuzz corpora replayed through every harness (no libFuzzer needed), and the benchmark script once
# in --quick mode (no thresholds: the figures belong to the full run's report).
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
if [[ -z ${CACHETORYD_NO_SMOKE:-} ]]; then
    smoke fuzz-replay make --no-print-directory fuzz-replay BUILD="$BUILD"
    smoke bench-quick scripts/bench --quick --no-install --bin "$BUILD/cachetoryd" --out "$tmp/bench"
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
if ((passed + failed == 0)); then
    echo "=== no test ran"
    status=1
fi
((failed > 0)) && status=1
echo "$passed passed, $failed failed"
exit $status
