#!/usr/bin/env bash
# The GPU check: refvae's whole test suite with the CuPy tests enabled, every example and the main command on
# CuPy, and the GPU benchmarks, in one go (about 5 minutes on one H100/H200), everything written to OUTDIR.
#
#   benchmarks/gpu_check.sh OUTDIR                     # on a GPU machine (CuPy, PyTorch with CUDA)
#   benchmarks/gpu_check.sh OUTDIR --backend numpy     # rehearsal on the CPU: the same stages, CuPy steps skipped
#   benchmarks/gpu_check.sh OUTDIR --backend numpy --quick   # a faster rehearsal (small benchmark settings)
#
# It needs no network: refvae runs from this checkout through PYTHONPATH (no install), with the Python named by
# $PYTHON (default python3). Packages it lacks can be put as wheels in the git-ignored folder .whl/ at the
# repository root (array-api-strict, for the strict backend's tests); they are installed into a temporary folder,
# never into the system. Fetch it where pip reaches PyPI:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl array-api-strict On your own GPU machine, install as usual instead: pip install -e ".[test,gpu13]"
# (CUDA 13) or ".[test,gpu]" (CUDA 12), plus ".[bench]" for the PyTorch and scikit-learn comparisons.
#
# Stages (each with a time limit, logged to OUTDIR/<stage>.log, its status and seconds in OUTDIR/stages.tsv):
#   tests      python -m pytest (xdist across 8 workers when pytest-xdist is installed), JUnit report junit.xml
#   examples   examples/*.py --quick --backend B, and `refvae train vae` for 1 epoch (in parallel with the tests)
#   bench_vae  benchmarks/bench_vae.py at batch 128 and at batch 1024, against PyTorch on CUDA
#   bench_rbm  benchmarks/bench_rbm.py (PCD-1; scikit-learn on the CPU beside it)
#   bench_eval benchmarks/bench_eval.py --compare-numpy (IW k=5000, AIS 100 chains x 14,500 temperatures, and the
#              same estimates on NumPy for the agreement test: IW on 500 test images, AIS in full)
#   ais_spread benchmarks/ais_spread.py: AIS log Z over 6 seeds (the error bar the weights' spread cannot give)
#   profile    benchmarks/profile_gpu.py (every kernel of an epoch, refvae and PyTorch) and profile_vae.py
#   summary    benchmarks/gpu_summary.py -> OUTDIR/gpu_check.json (commit it as benchmarks/results/gpu_check.json)
# A failing stage does not stop the others; the exit status is 0 only when every stage succeeded.

set -u -o pipefail
if [ $# -lt 1 ]; then
    echo "usage: benchmarks/gpu_check.sh OUTDIR [--backend cupy|numpy] [--quick]" >&2
    exit 2
fi
OUTDIR=$(mkdir -p "$1" && cd "$1" && pwd) || { echo "gpu_check.sh: cannot create the output folder $1" >&2; exit 2; }
shift
BACKEND=cupy
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) BACKEND=${2:?--backend needs a value}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        *) echo "gpu_check.sh: unknown option $1 (use --backend cupy|numpy, --quick)" >&2; exit 2 ;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export PYTHONDONTWRITEBYTECODE=1
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

# stage NAME LIMIT_S COMMAND...: run with a time limit, log to NAME.log, record rc and seconds.
stage() {
    local name=$1 limit=$2 t0 rc
    shift 2
    t0=$(date +%s.%N)
    timeout --kill-after=10 "$limit" "$@" > "$OUTDIR/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%.1f\n' "$name" "$rc" "$(since "$t0")" >> "$OUTDIR/stages.tsv"
    printf '[%4ss] %-12s rc=%s\n' "$(( $(date +%s) - T_START ))" "$name" "$rc"
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

# --- tests and examples, side by side (neither is timed) -----------------------------------------------------
XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 8)
stage tests 200 "$PY" -m pytest -q -p no:cacheprovider "${XDIST[@]}" --junitxml="$OUTDIR/junit.xml" &
TESTS_PID=$!

run_examples() {
    local ex name rc t0 extra
    : > "$OUTDIR/examples.tsv"
    for ex in examples/*.py; do
        name=$(basename "$ex" .py)
        extra=()
        grep -q -- '"--out"' "$ex" && extra=(--out "$OUTDIR/examples/$name")
        t0=$(date +%s.%N)
        timeout 150 "$PY" "$ex" --quick --backend "$BACKEND" "${extra[@]}" > "$OUTDIR/example_$name.log" 2>&1
        rc=$?
        printf '%s\t%s\t%.1f\n' "$name" "$rc" "$(since "$t0")" >> "$OUTDIR/examples.tsv"
    done
    # The main command (README quickstart), one epoch on a subset
    t0=$(date +%s.%N)
    timeout 150 "$PY" -m refvae train vae --backend "$BACKEND" --epochs 1 --train-size 2000 --test-size 200 \
        --iw-samples 50 --no-progress --out "$OUTDIR/examples/refvae_train_vae" > "$OUTDIR/example_cli_train_vae.log" 2>&1
    rc=$?
    printf '%s\t%s\t%.1f\n' "refvae_train_vae" "$rc" "$(since "$t0")" >> "$OUTDIR/examples.tsv"
    awk -F'\t' '$2 != 0 {bad = 1} END {exit bad}' "$OUTDIR/examples.tsv"
}
export OUTDIR PY BACKEND
export -f run_examples since
stage examples 230 bash -c run_examples &
EXAMPLES_PID=$!
wait $TESTS_PID
wait $EXAMPLES_PID

# --- benchmarks, one at a time ----------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    VAE_EPOCHS=(3 3); EVAL=(--quick); RBM=(--quick)
else
    VAE_EPOCHS=(11 21); EVAL=(); RBM=()
fi
stage bench_vae_b128 90 "$PY" benchmarks/bench_vae.py --backend "$BACKEND" --batch-size 128 \
    --epochs "${VAE_EPOCHS[0]}" --json "$OUTDIR/bench_vae_b128.json"
stage bench_vae_b1024 60 "$PY" benchmarks/bench_vae.py --backend "$BACKEND" --batch-size 1024 \
    --epochs "${VAE_EPOCHS[1]}" --json "$OUTDIR/bench_vae_b1024.json"
stage bench_rbm 60 "$PY" benchmarks/bench_rbm.py --backend "$BACKEND" "${RBM[@]}" --json "$OUTDIR/bench_rbm.json"
stage bench_eval 200 "$PY" benchmarks/bench_eval.py --backend "$BACKEND" --compare-numpy "${EVAL[@]}" \
    --json "$OUTDIR/bench_eval.json"
if [ "$QUICK" = 1 ]; then AIS=(--quick --seeds 0 1); else AIS=(--seeds 0 1 2 3 4 5); fi
stage ais_spread 120 "$PY" benchmarks/ais_spread.py --backend "$BACKEND" "${AIS[@]}" --json "$OUTDIR/ais_spread.json"
if [ "$BACKEND" = cupy ]; then
    stage profile_gpu 60 "$PY" benchmarks/profile_gpu.py --json "$OUTDIR/profile_gpu.json"
fi
stage profile_vae 60 "$PY" benchmarks/profile_vae.py --backend "$BACKEND" --epochs 3 --json "$OUTDIR/profile_vae.json"

stage summary 60 "$PY" benchmarks/gpu_summary.py "$OUTDIR" --backend "$BACKEND"
cat "$OUTDIR/summary.log"
echo "gpu_check.sh: $(( $(date +%s) - T_START )) s in all; everything is in $OUTDIR"
awk -F'\t' '$2 != 0 {bad = 1} END {exit bad}' "$OUTDIR/stages.tsv"
