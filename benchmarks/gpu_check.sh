#!/usr/bin/env bash
# The GPU check: the CuPy tests, every command-line program and every example on CuPy, and the GPU benchmarks,
# in at most 5 minutes on one H200 (the stage limits below sum to 300 s), everything written to a fresh folder.
#
#   benchmarks/gpu_check.sh OUTDIR                          # on a GPU machine (CuPy, PyTorch with CUDA)
#   benchmarks/gpu_check.sh OUTDIR --stages tests,examples  # rerun only some stages (summary always runs)
#   benchmarks/gpu_check.sh OUTDIR --backend numpy --quick  # the rehearsal on the CPU (CI runs it)
#
# Each call writes into a new folder OUTDIR/attempt-N (N one more than the last), so a rerun never meets the
# runs of an earlier attempt; the folder's name is the last line printed.
#
# It needs no network: refvae runs from this checkout through PYTHONPATH (no install), with the Python named by
# $PYTHON (default python3). It needs no package beyond what the H200's Python holds (CuPy 14.2, PyTorch, pytest,
# pytest-xdist, scikit-learn, tqdm: the device's KINDS.md); the CuPy selection of the suite (-m cupy) imports
# nothing else (checked on the CPU with array-api-strict made unimportable). To run the strict cases there too,
# carry array-api-strict as a wheel in the git-ignored folder .whl/ at the repository root: it is installed into a
# temporary folder, never into the system. Fetch it where pip reaches PyPI (from the repository root):
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl "array-api-strict>=2.2"
# On your own GPU machine, install as usual instead: pip install -e ".[test,gpu13,bench]" (CUDA 13) or
# ".[test,gpu,bench]" (CUDA 12).
#
# Stages (limit in seconds; log in <stage>.log; name, exit status, seconds and limit in stages.tsv):
#   tests          60  pytest -m "cupy and not long" (the CuPy cases; NumPy and strict ran in CI), xdist
#   tests_long     25  pytest -m "cupy and long": the CuPy cases that take more than a few seconds
#   commands       35  benchmarks/gpu_runs.py commands: train vae, rbm (PCD, exact), helmholtz (wake-sleep, rws,
#                      exact), sample from each (and the VAE's aggregate sources), evaluate, diagnose, gradcheck
#   examples       55  benchmarks/gpu_runs.py examples: every examples/*.py with --quick, 4 at a time
#   bench_vae_b128 20  benchmarks/bench_vae.py at batch 128, against PyTorch on CUDA
#   bench_vae_b1024 15 the same at batch 1024
#   bench_rbm      12  benchmarks/bench_rbm.py (PCD-1; scikit-learn on the CPU beside it)
#   bench_eval     35  benchmarks/bench_eval.py --compare-numpy: IW k=5000 and AIS (100 chains, 4,000
#                      temperatures), and the same estimates on NumPy for the agreement test (IW on 200 images)
#   ais_spread     15  benchmarks/ais_spread.py: AIS log Z over 3 seeds (4,000 temperatures)
#   profile_gpu    12  benchmarks/profile_gpu.py (every kernel of a VAE step, refvae and PyTorch)
#   profile_vae     5  benchmarks/profile_vae.py
#   summary         5  benchmarks/gpu_summary.py -> gpu_check.json (commit it as benchmarks/results/gpu_check.json)
# The tests (then tests_long) run beside the commands (then the examples); the benchmarks follow, one at a time.
# A failing stage does not stop the others; the exit status is 0 only when every stage succeeded.
#
# On the CPU the limits are multiplied by LIMIT_SCALE (default 1 on cupy, 4 on numpy or strict: the rehearsal checks
# that every stage runs and reports, not how fast a CPU is).

set -u -o pipefail
STAGES_ALL=(tests tests_long commands examples bench_vae_b128 bench_vae_b1024 bench_rbm bench_eval ais_spread
            profile_gpu profile_vae summary)
declare -A LIMIT=([tests]=60 [tests_long]=25 [commands]=35 [examples]=55 [bench_vae_b128]=20 [bench_vae_b1024]=15
                  [bench_rbm]=12 [bench_eval]=35 [ais_spread]=15 [profile_gpu]=12 [profile_vae]=5 [summary]=5)

usage="usage: benchmarks/gpu_check.sh OUTDIR [--backend cupy|numpy|strict] [--quick] [--stages a,b,...]"
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "$usage" >&2
    exit 2
fi
BASE=$1
shift
BACKEND=cupy
QUICK=0
WANTED=$(IFS=,; echo "${STAGES_ALL[*]}")
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) BACKEND=${2:?--backend needs a value: cupy, numpy or strict}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --stages) WANTED=${2:?--stages needs a comma-separated list}; shift 2 ;;
        *) echo "gpu_check.sh: unknown option $1 (use --backend cupy|numpy|strict, --quick, --stages a,b)" >&2
           exit 2 ;;
    esac
done
case "$BACKEND" in cupy|numpy|strict) ;; *) echo "gpu_check.sh: unknown backend $BACKEND (cupy, numpy or strict)" >&2
                                           exit 2 ;; esac
for s in ${WANTED//,/ }; do
    [ -n "${LIMIT[$s]:-}" ] || { echo "gpu_check.sh: unknown stage $s (one of: ${STAGES_ALL[*]})" >&2; exit 2; }
done
wanted() { [[ ",$WANTED,summary," == *",$1,"* ]]; }

# A fresh folder for this attempt: OUTDIR/attempt-N
mkdir -p "$BASE" || { echo "gpu_check.sh: cannot create the output folder $BASE" >&2; exit 2; }
N=1
while [ -e "$BASE/attempt-$N" ]; do N=$((N + 1)); done
OUTDIR=$(mkdir "$BASE/attempt-$N" && cd "$BASE/attempt-$N" && pwd) \
    || { echo "gpu_check.sh: cannot create $BASE/attempt-$N" >&2; exit 2; }

case "$BACKEND" in cupy) SCALE=${LIMIT_SCALE:-1} ;; *) SCALE=${LIMIT_SCALE:-4} ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1
: > "$OUTDIR/stages.tsv"
T_START=$(date +%s)

# Packages carried as wheels (no network on the GPU machine): installed into a temporary folder only.
if ls "$ROOT"/.whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import array_api_strict" 2>/dev/null; then
    SITE=$(mktemp -d)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$ROOT"/.whl/*.whl \
        > "$OUTDIR/wheels.log" 2>&1 || echo "gpu_check.sh: installing the wheels in .whl/ failed (see wheels.log)"
    export PYTHONPATH="$PYTHONPATH:$SITE"
fi

since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }   # seconds since $1
limit_of() { awk -v l="${LIMIT[$1]}" -v s="$SCALE" 'BEGIN { printf "%d", l * s }'; }

# stage NAME COMMAND...: run with the stage's limit, log to NAME.log, record exit status, seconds and limit.
stage() {
    local name=$1 limit t0 rc
    shift
    wanted "$name" || return 0
    limit=$(limit_of "$name")
    t0=$(date +%s.%N)
    timeout --kill-after=2 "$limit" "$@" > "$OUTDIR/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(since "$t0")" "$limit" >> "$OUTDIR/stages.tsv"
    printf '[%4ss] %-16s rc=%s\n' "$(( $(date +%s) - T_START ))" "$name" "$rc"
    return $rc
}

{
    date -u +"%Y-%m-%d %H:%M UTC"
    uname -a
    nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    "$PY" -c "import sys, numpy; print('python', sys.version.split()[0], 'numpy', numpy.__version__)"
    "$PY" -m pip list 2>/dev/null | grep -i -E '^(cupy|torch|numpy|scipy|scikit-learn|matplotlib|tqdm|pytest|array.api)' || true
    nproc
} > "$OUTDIR/machine.log" 2>&1

# --- tests beside commands and examples (none of them timed) ----------------------------------------------------
XDIST=()
if "$PY" -c "import xdist" 2>/dev/null; then
    WORKERS=$(nproc); [ "$WORKERS" -gt 8 ] && WORKERS=8
    XDIST=(-n "$WORKERS")
fi
# pytest, with "no test selected" (exit status 5) counted as success
PYTEST=(bash -c '"$@"; rc=$?; [ "$rc" = 5 ] && exit 0; exit "$rc"' pytest "$PY" -m pytest -q -p no:cacheprovider)
run_tests() {
    stage tests "${PYTEST[@]}" "${XDIST[@]}" -m "cupy and not long" --junitxml="$OUTDIR/junit.xml"
    stage tests_long "${PYTEST[@]}" "${XDIST[@]}" -m "cupy and long" --junitxml="$OUTDIR/junit_long.xml"
}
# each stage's runner stops 3 s before the stage's limit, so that it writes its JSON before being stopped
run_programs() {
    stage commands "$PY" benchmarks/gpu_runs.py commands "$OUTDIR" --backend "$BACKEND" --jobs 4 \
        --deadline $(( $(limit_of commands) - 3 ))
    stage examples "$PY" benchmarks/gpu_runs.py examples "$OUTDIR" --backend "$BACKEND" --jobs 4 \
        --deadline $(( $(limit_of examples) - 3 ))
}
# 12 processes share the machine here: two BLAS threads each
OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 run_tests &
TESTS_PID=$!
OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 run_programs &
PROGRAMS_PID=$!
wait $TESTS_PID
wait $PROGRAMS_PID

# --- benchmarks, one at a time ----------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    VAE_EPOCHS=(6 6); QUICK_ARG=(--quick); AIS=(--quick --seeds 0 1); PROFILE_EPOCHS=1
else
    VAE_EPOCHS=(11 21); QUICK_ARG=(); AIS=(--seeds 0 1 2 --betas 4000); PROFILE_EPOCHS=3
fi
stage bench_vae_b128 "$PY" benchmarks/bench_vae.py --backend "$BACKEND" --batch-size 128 \
    --epochs "${VAE_EPOCHS[0]}" --json "$OUTDIR/bench_vae_b128.json"
stage bench_vae_b1024 "$PY" benchmarks/bench_vae.py --backend "$BACKEND" --batch-size 1024 \
    --epochs "${VAE_EPOCHS[1]}" --json "$OUTDIR/bench_vae_b1024.json"
stage bench_rbm "$PY" benchmarks/bench_rbm.py --backend "$BACKEND" "${QUICK_ARG[@]}" --json "$OUTDIR/bench_rbm.json"
if [ "$QUICK" = 1 ]; then EVAL=(--quick); else EVAL=(--betas 4000 --compare-n-test 200); fi
stage bench_eval "$PY" benchmarks/bench_eval.py --backend "$BACKEND" --compare-numpy "${EVAL[@]}" \
    --json "$OUTDIR/bench_eval.json"
stage ais_spread "$PY" benchmarks/ais_spread.py --backend "$BACKEND" "${AIS[@]}" --json "$OUTDIR/ais_spread.json"
if [ "$BACKEND" = cupy ]; then
    stage profile_gpu "$PY" benchmarks/profile_gpu.py --json "$OUTDIR/profile_gpu.json"
fi
stage profile_vae "$PY" benchmarks/profile_vae.py --backend "$BACKEND" --epochs "$PROFILE_EPOCHS" \
    --json "$OUTDIR/profile_vae.json"

stage summary "$PY" benchmarks/gpu_summary.py "$OUTDIR" --backend "$BACKEND" --seconds "$(( $(date +%s) - T_START ))"
cat "$OUTDIR/summary.log"
echo "gpu_check.sh: $(( $(date +%s) - T_START )) s in all; everything is in"
echo "$OUTDIR"
awk -F'\t' '$2 != 0 {bad = 1} END {exit bad}' "$OUTDIR/stages.tsv"
