#!/usr/bin/env bash
# The whole test suite: notebooks clean and in sync with the package, every notebook run by
# nbdev-test in quick mode, then pytest. Ends with one line `N passed, N failed` counting
# notebooks and pytest tests; exits non-zero on any failure or when no notebook ran.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
# shellcheck disable=SC1091
source .venv/bin/activate
# One thread per worker: on 2 cores, oversubscribed threads make small ops 10-40x slower.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONHASHSEED=0
export EDULIT_PROGRESS=0 MPLBACKEND=Agg
WORKERS=${EDULIT_TEST_WORKERS:-2}
log=$(mktemp -d)
checks_failed=0

tree_hash() { find "$@" -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum; }

echo "== nbdev-clean leaves no diff"
before=$(tree_hash nbs); nbdev-clean >/dev/null 2>&1; after=$(tree_hash nbs)
if [ "$before" != "$after" ]; then echo "FAIL: notebooks were not clean; nbdev-clean changed them (commit the cleaned notebooks)"; checks_failed=$((checks_failed+1)); fi

echo "== nbdev-export leaves no diff"
before=$(tree_hash edulit); nbdev-export >/dev/null 2>&1; after=$(tree_hash edulit)
if [ "$before" != "$after" ]; then echo "FAIL: edulit/ was out of sync with the notebooks; nbdev-export changed it (commit the exported modules)"; checks_failed=$((checks_failed+1)); fi

echo "== nbdev-test (quick mode, $WORKERS workers)"
start=$(date +%s)
nbdev-test --n-workers "$WORKERS" --do-print --timing ${NBDEV_TEST_PATH:-nbs} >"$log/nbdev.txt" 2>&1
nb_rc=$?
grep -v -e FutureWarning -e 'warnings.warn' "$log/nbdev.txt" | grep -E '^(Starting|- Completed|Failed|.*Error in|	)' | head -200
nb_passed=$(grep -c '^- Completed' "$log/nbdev.txt" || true)
nb_failed=$(sed -n '/Failed On The Following Notebooks/,$p' "$log/nbdev.txt" | grep -c '\.ipynb' || true)
if [ "$nb_rc" != 0 ] && [ "$nb_failed" = 0 ]; then nb_failed=1; tail -40 "$log/nbdev.txt"; fi
if [ "$nb_failed" != 0 ]; then grep -v -e FutureWarning -e 'warnings.warn' "$log/nbdev.txt" | tail -80; fi
echo "notebooks: $nb_passed passed, $nb_failed failed in $(( $(date +%s) - start )) s"

echo "== pytest"
python -m pytest tests -q -p no:cacheprovider -n "$WORKERS" -m "not slow and not cuda" --junitxml="$log/junit.xml" ${PYTEST_ARGS:-}
py_rc=$?
read -r py_passed py_failed py_skipped < <(python - "$log/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try: root = ET.parse(sys.argv[1]).getroot()
except Exception: print(0, 1, 0); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites); f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
s_ = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - s_, f, s_)
PY
)
# pytest exits 5 when no test was collected; anything else non-zero without counted failures is a failure too.
if [ "$py_rc" != 0 ] && [ "$py_rc" != 5 ] && [ "$py_failed" = 0 ]; then py_failed=1; fi

passed=$((nb_passed + py_passed))
failed=$((nb_failed + py_failed + checks_failed))
rm -rf "$log"
if [ "$((nb_passed + nb_failed))" = 0 ]; then echo "FAIL: no notebook ran"; failed=$((failed+1)); fi
echo "$passed passed, $failed failed, $py_skipped skipped"
[ "$failed" = 0 ]
