#!/usr/bin/env bash
# shellcheck disable=SC2317  # (the functions below run through step())
# The one prepared GPU check of pyg-mspipe, for a lent NVIDIA machine (the
# device tool), in one call of under 8 minutes:
#
#     run(command="bash benchmarks/gpu_check.sh", timeout_s=540)
#
# It prints the environment, runs the CUDA tests (tests marked `cuda` and
# every test of a file with "cuda" in its name), then the GPU benchmarks with
# small, bounded settings: PyG sequential vs ours vs the pipeline vs the
# compute-only floor (bench_pipeline.py), the same with host-resident memory
# (--storage cpu), and the memory module alone (bench_memory_interleaved.py,
# bench_memory.py --phases). Each step runs under its own `timeout`, inside one
# overall budget; a failed step is recorded and the script goes on; it exits
# non-zero if any step failed. Everything goes to ONE results file,
# $OUT/gpu_check.txt (also echoed to stdout), plus the pipeline's timeline
# PNGs in $OUT (7 files in all: the device tool brings back at most 8).
#
# Runs from the repository root without an install (PYTHONPATH=.), with the
# machine's own python3 (torch, torch_geometric; torch_scatter not needed).
#
# Environment:
#   OUT                 results folder (default ./gpu_check_out)
#   GPU_CHECK_DRY=1     (or the argument --cpu-smoke) CPU smoke run: every
#                       step with tiny settings on the CPU, to prove the
#                       commands parse and run (CUDA tests are skipped there)
#   GPU_CHECK_BUDGET    seconds for all steps together (default 450)
#   GPU_CHECK_EVENTS    training events of the device pipeline benchmark
#                       (default 60000; the others use 2/3 of it)
#   GPU_CHECK_COMMIT    commit to record (default: git rev-parse, if git works)
#   PYTHON              interpreter (default python3; in a CPU smoke run
#                       ./.venv/bin/python when it exists)
#   PYG_MSPIPE_DATA     folder of wikipedia_edges.csv.gz (default: found in
#                       ./shared/data or ../shared/data; else CollegeMsg)

set -u -o pipefail

cd "$(dirname "$0")/.." || exit 2
START=$(date +%s)

DRY=${GPU_CHECK_DRY:-0}
for arg in "$@"; do
    case $arg in
        --cpu-smoke) DRY=1 ;;
        -h | --help) sed -n '2,36p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done
[ "$DRY" = 0 ] || DRY=1

OUT=${OUT:-./gpu_check_out}
mkdir -p "$OUT" || exit 2
RESULTS=$OUT/gpu_check.txt
: >"$RESULTS" || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT

BUDGET=${GPU_CHECK_BUDGET:-450}
DEADLINE=$((START + BUDGET))

if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    if [ "$DRY" = 1 ] && [ -x .venv/bin/python ]; then
        PYTHON=.venv/bin/python
    fi
fi
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHON DRY WORK
export PYTHONUNBUFFERED=1
export MPLBACKEND=Agg

if [ "$DRY" = 1 ]; then
    MODE="cpu-smoke (GPU_CHECK_DRY=1: tiny settings on the CPU)"
    DEVICE=cpu
    EVENTS=600 HOST_EVENTS=600 MEM_EVENTS=600 ROUNDS=1 HOST_ROUNDS=1 TEST_TIMEOUT=120
else
    MODE="gpu"
    DEVICE=cuda
    EVENTS=${GPU_CHECK_EVENTS:-60000}
    HOST_EVENTS=$((EVENTS * 2 / 3)) MEM_EVENTS=$((EVENTS * 2 / 3))
    ROUNDS=3 HOST_ROUNDS=2 TEST_TIMEOUT=120
fi
export TEST_TIMEOUT

# --- data: the Wikipedia stream if it travelled, else the bundled CollegeMsg
DATASET=college
if [ -n "${PYG_MSPIPE_DATA:-}" ] && [ -f "$PYG_MSPIPE_DATA/wikipedia_edges.csv.gz" ]; then
    DATASET=wikipedia
else
    for dir in ./shared/data ../shared/data; do
        if [ -f "$dir/wikipedia_edges.csv.gz" ]; then
            PYG_MSPIPE_DATA=$(cd "$dir" && pwd)
            export PYG_MSPIPE_DATA
            DATASET=wikipedia
            break
        fi
    done
fi

COMMIT=${GPU_CHECK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
DIRTY=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l | tr -d ' ')
[ "$DIRTY" != 0 ] || DIRTY=""

say() { printf '%s\n' "$*" | tee -a "$RESULTS"; }

NAMES=() CODES=() SECONDS_TAKEN=() NOTES=()
FAILED=0

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND under `timeout`, at most
# LIMIT_SECONDS and never past the overall deadline; output to the results
# file and stdout; records the exit code (STEP_NOTE, if set, is noted too).
step() {
    local name=$1 limit=$2 rc t0 left note=""
    shift 2
    left=$((DEADLINE - $(date +%s)))
    say ""
    say "======== [$name] $(date -u +%H:%M:%S) limit ${limit}s, budget left ${left}s"
    say "\$ $*"
    if [ "$left" -lt 20 ]; then
        say "SKIPPED: the overall budget (${BUDGET}s) is spent"
        NAMES+=("$name") CODES+=("skip") SECONDS_TAKEN+=(0) NOTES+=("budget spent")
        FAILED=$((FAILED + 1))
        return
    fi
    [ "$limit" -le "$left" ] || limit=$left
    # (a shell function of this script runs in a child bash, exported)
    if declare -F "$1" >/dev/null; then
        export -f "${1?}"
        set -- bash -c "$1"
    fi
    t0=$(date +%s)
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$RESULTS" "$WORK/step_$name.log"
        rc=${PIPESTATUS[0]}
    else
        "$@" 2>&1 | tee -a "$RESULTS" "$WORK/step_$name.log"
        rc=${PIPESTATUS[0]}
        note="no timeout(1): ran unbounded"
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        note="timed out after ${limit}s"
    fi
    if [ -n "${STEP_NOTE:-}" ]; then
        note="${note:+$note; }$STEP_NOTE"
    fi
    STEP_NOTE=""
    NAMES+=("$name") CODES+=("$rc") SECONDS_TAKEN+=($(($(date +%s) - t0))) NOTES+=("$note")
    [ "$rc" = 0 ] || FAILED=$((FAILED + 1))
    say "-------- [$name] exit code $rc${note:+ ($note)}"
}

say "# pyg-mspipe GPU check"
say "started:  $(date -u '+%Y-%m-%d %H:%M:%S UTC'), mode: $MODE"
say "commit:   $COMMIT${DIRTY:+ ($DIRTY tracked files modified)}"
say "dataset:  $DATASET${PYG_MSPIPE_DATA:+ (PYG_MSPIPE_DATA=$PYG_MSPIPE_DATA)}"
say "settings: device=$DEVICE pipeline events=$EVENTS rounds=$ROUNDS; host-memory events=$HOST_EVENTS rounds=$HOST_ROUNDS; memory-module events=$MEM_EVENTS rounds=$ROUNDS; budget ${BUDGET}s"
say "python:   $PYTHON"

# --- 1. environment ---------------------------------------------------------
env_info() {
    echo "host: $(uname -srm), $(nproc 2>/dev/null || echo '?') CPUs"
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi -L
        nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu --format=csv
    else
        echo "nvidia-smi: not present"
    fi
    GPU_CHECK_NEED_CUDA=$((1 - DRY)) "$PYTHON" - <<'EOF'
import importlib.metadata
import importlib.util
import os
import platform
import sys

import torch

print(f"python {platform.python_version()} ({sys.executable})")
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, "
      f"{torch.get_num_threads()} intra-op threads")
available = torch.cuda.is_available()
print(f"torch.cuda.is_available(): {available}")
if available:
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"cuda:{i} {p.name}, capability {p.major}.{p.minor}, "
              f"{p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs")
import torch_geometric

print(f"torch_geometric {torch_geometric.__version__}")
for module, dist in (("torch_scatter", "torch_scatter"), ("pytest", "pytest"),
                     ("pytest_timeout", "pytest-timeout"), ("hypothesis", "hypothesis"),
                     ("xdist", "pytest-xdist"), ("matplotlib", "matplotlib"),
                     ("sklearn", "scikit-learn"), ("numpy", "numpy")):
    if importlib.util.find_spec(module) is None:
        print(f"{dist}: absent")
        continue
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = "? (no metadata)"
    print(f"{dist}: {version}")
import pyg_mspipe

print(f"pyg_mspipe {getattr(pyg_mspipe, '__version__', '?')} from {pyg_mspipe.__file__}")
try:
    import pyg_mspipe._scatter as scatter
    print(f"pyg_mspipe uses torch_scatter: {scatter.WITH_TORCH_SCATTER}")
except Exception as exc:
    print(f"pyg_mspipe._scatter: {type(exc).__name__}: {exc}")
if os.environ["GPU_CHECK_NEED_CUDA"] == "1" and not available:
    sys.exit("no CUDA device: the CUDA tests would only be skipped, the benchmarks fail")
EOF
}
step env 60 env_info

# --- 2. CUDA tests ----------------------------------------------------------
cuda_tests() {
    # Test files that mention CUDA, less those that import a module missing
    # here (hypothesis, sklearn, ...): collecting the whole suite would let
    # one unrelated collection error stop the step.
    "$PYTHON" - >"$WORK/test_files" <<'EOF'
import ast
import importlib.util
import pathlib
import sys

for path in sorted(pathlib.Path("tests").rglob("test_*.py")):
    text = path.read_text()
    if "cuda" not in text.lower():
        continue
    missing = set()
    for node in ast.parse(text).body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if importlib.util.find_spec(top) is None:
                missing.add(top)
    if missing:
        print(f"not collected: {path} (needs {', '.join(sorted(missing))})", file=sys.stderr)
    else:
        print(path)
EOF
    local files=() args=(-q -p no:cacheprovider -rfEs --junitxml="$WORK/junit.xml")
    mapfile -t files <"$WORK/test_files"
    if "$PYTHON" -c "import pytest_timeout" 2>/dev/null; then
        args+=("--timeout=$TEST_TIMEOUT")
        echo "pytest-timeout: --timeout=$TEST_TIMEOUT per test"
    else
        # (pyproject's `timeout = 300` and pytest.mark.timeout then only warn)
        echo "pytest-timeout absent: no per-test timeout; the step's own timeout bounds it"
    fi
    if [ "${#files[@]}" = 0 ]; then
        echo "no test file mentions cuda"
        return 5
    fi
    # -k cuda: tests marked `cuda` (pytest matches marker names), every test
    # of a file with cuda in its name, and tests with cuda in their own name
    echo "\$ $PYTHON -m pytest ${args[*]} -k cuda ${files[*]}"
    "$PYTHON" -m pytest "${args[@]}" -k cuda "${files[@]}"
    local rc=$? junit_rc=0
    "$PYTHON" - "$WORK/junit.xml" "$DRY" <<'EOF' || junit_rc=$?
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as exc:
    sys.exit(f"no junit report: {exc}")
suites = [root] if root.tag == "testsuite" else list(root)
count = {k: sum(int(s.get(k, 0)) for s in suites)
         for k in ("tests", "failures", "errors", "skipped")}
passed = count["tests"] - count["failures"] - count["errors"] - count["skipped"]
print(f"CUDA tests: {count['tests']} collected, {passed} passed, {count['failures']} failed, "
      f"{count['errors']} errors, {count['skipped']} skipped")
if sys.argv[2] == "0" and count["skipped"]:
    sys.exit("CUDA tests were skipped on the GPU machine: counted as a failure")
if sys.argv[2] == "0" and not passed:
    sys.exit("no CUDA test passed")
EOF
    [ "$junit_rc" = 0 ] || [ "$rc" != 0 ] || rc=1
    return "$rc"
}
step cuda_tests 180 cuda_tests

# --- 3. benchmarks ----------------------------------------------------------
BENCH=(--device "$DEVICE" --dataset "$DATASET")
# sequential (PyG, ours) vs pipelined (s=0, online4, auto) vs the floor
step pipeline_device 150 "$PYTHON" benchmarks/bench_pipeline.py "${BENCH[@]}" \
    --max-events "$EVENTS" --rounds "$ROUNDS" --timeline "$OUT/timeline_device_"
# the same with the memory and its pending messages in pinned host memory
# (bench_pipeline's floor keeps the memory on the device)
step pipeline_hostmem 110 "$PYTHON" benchmarks/bench_pipeline.py "${BENCH[@]}" --storage cpu \
    --max-events "$HOST_EVENTS" --rounds "$HOST_ROUNDS" --timeline "$OUT/timeline_hostmem_"
# the memory module, batch by batch: that script times with host clocks and
# no synchronisation, so on CUDA it runs with CUDA_LAUNCH_BLOCKING=1 (each
# kernel finishes before the clock is read; PyG's host syncs would otherwise
# charge our queued kernels to PyG)
STEP_NOTE=$([ "$DEVICE" = cuda ] && echo "CUDA_LAUNCH_BLOCKING=1")
step memory_interleaved 90 env CUDA_LAUNCH_BLOCKING="$([ "$DEVICE" = cuda ] && echo 1 || echo 0)" \
    "$PYTHON" benchmarks/bench_memory_interleaved.py "${BENCH[@]}" \
    --max-events "$MEM_EVENTS" --rounds "$ROUNDS"
# the memory module by epochs, device synchronised at phase boundaries
step memory_phases 90 "$PYTHON" benchmarks/bench_memory.py "${BENCH[@]}" --phases \
    --max-events "$MEM_EVENTS" --rounds "$ROUNDS"

# --- summary ----------------------------------------------------------------
say ""
say "======== summary ($MODE, commit $COMMIT, dataset $DATASET, $(($(date +%s) - START))s)"
summary_line() { printf '%-20s %-6s %6s  %s\n' "$@" | tee -a "$RESULTS"; }
summary_line step exit seconds note
for i in "${!NAMES[@]}"; do
    summary_line "${NAMES[$i]}" "${CODES[$i]}" "${SECONDS_TAKEN[$i]}" "${NOTES[$i]}"
done
HEADLINE='^(CUDA tests:|epoch time over the compute-only floor|training epoch speed-up|memory phase:|memory module speed-up|  (pyg|ours|s=0|online[0-9]+|auto): [0-9.]+$|(s=0|online[0-9]+|auto): mode=)'
say ""
say "headline lines of each step:"
for name in "${NAMES[@]}"; do
    [ -f "$WORK/step_$name.log" ] || continue
    grep -E "$HEADLINE" "$WORK/step_$name.log" | sed "s/^/[$name] /" | tee -a "$RESULTS"
done
say ""
if [ "$FAILED" = 0 ]; then
    say "gpu_check: all ${#NAMES[@]} steps passed; results in $RESULTS"
    exit 0
fi
say "gpu_check: $FAILED of ${#NAMES[@]} steps FAILED; results in $RESULTS"
exit 1
