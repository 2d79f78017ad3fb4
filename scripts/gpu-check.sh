#!/usr/bin/env bash
# The cuda backend's check on a machine with an NVIDIA GPU and no network, in one command:
#
#   bash scripts/gpu-check.sh [--no-install] [--require-gpu] [--skip=STAGE,...] OUT_DIR
#
# Stages, in order, each bounded by `timeout` inside one overall budget (GPU_CHECK_BUDGET,
# 290 s) and each writing as it goes, so a cut-short check still returns what was done:
#   install    pip install --no-index --no-deps of .whl/*.whl (siliconbench's wheel, built here by
#              scripts/gpu-wheels.sh, and what the machine lacks) into a scratch folder put first
#              on PYTHONPATH, so the machine's torch is never touched; the wheel must match this
#              checkout file for file; `pip check` must say nothing about what we carried.
#   imports    every module of harness, backends and workloads imports (from the install).
#   device     the cuda backend's availability, and the device it sees.
#   benchmark  benchmarks/cuda_mlp_tflops.py: mlp TFLOP/s vs a bare matmul chain, event latency
#              vs torch.utils.benchmark's blocked_autorange at batch 1 and a large batch.
#   run        siliconbench run --backend cuda: mlp, resnet50, bert-base at batch 1 and
#              GPU_CHECK_LARGE_BATCH (64), bf16 and fp32, eager and cudagraph (24 cells, each in
#              its own child process, the accelerator default).
#   report     siliconbench report --format html of that run.
#   pytest     pytest -m gpu (4 workers where pytest-xdist is installed): last, because its
#              torch.compile cells are the slowest and a timeout there costs only tests.
# Warnings are shown, never turned into errors (pytest runs with -o filterwarnings=default): the
# machine's torch and transformers may warn where ours do not.
#
# OUT_DIR gets at most 8 files: summary.md (pass/fail per stage, the figures, every failure;
# rewritten after each stage), check.log, benchmark.log, benchmark.json, run.log, run.json,
# report.html, pytest.log.
#
# Where no GPU is usable every GPU stage is reported skipped with the backend's reason (the
# benchmark and the CLI must themselves refuse with that reason, exit 2; pytest -m gpu must
# collect GPU tests that all skip), and the check passes; --require-gpu makes that a failure.
# --no-install skips the install stage and uses this interpreter's environment and checkout
# (CI runs it that way: tests/scripts/test_gpu_check.py). --skip=benchmark,run,report,pytest
# leaves those GPU stages out (a second call that redoes only what a first one cut short).
#
# Exit status: 0 when no stage failed, 1 when one did or timed out, 2 on bad usage.
# Environment: PYTHON (python3), GPU_CHECK_WHEELS (.whl), GPU_CHECK_BUDGET (290),
# GPU_CHECK_LARGE_BATCH (64), GPU_CHECK_MAX_TIME (1, sampling seconds per cell and figure).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

usage() { echo "usage: bash scripts/gpu-check.sh [--no-install] [--require-gpu] [--skip=STAGE,...] OUT_DIR" >&2; exit 2; }
INSTALL=1
REQUIRE_GPU=0
SKIP=","
OUT=""
for arg in "$@"; do
  case "$arg" in
    --no-install) INSTALL=0 ;;
    --require-gpu) REQUIRE_GPU=1 ;;
    --skip=*)
      IFS=, read -r -a wanted <<<"${arg#--skip=}"
      for s in "${wanted[@]}"; do
        case "$s" in benchmark|run|report|pytest) SKIP="$SKIP$s," ;; *) usage ;; esac
      done ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) usage ;;
    *) [ -z "$OUT" ] || usage; OUT=$arg ;;
  esac
done
[ -n "$OUT" ] || usage
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
if [ -n "$(ls -A "$OUT")" ]; then
  echo "gpu-check: $OUT is not empty; give an empty or new folder" >&2
  exit 2
fi

PYTHON=${PYTHON:-python3}
WHEELS=${GPU_CHECK_WHEELS:-$REPO/.whl}
BUDGET=${GPU_CHECK_BUDGET:-290}
LARGE_BATCH=${GPU_CHECK_LARGE_BATCH:-64}
MAX_TIME=${GPU_CHECK_MAX_TIME:-1}
export PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
LOG=$OUT/check.log
START=$(date +%s)
: >"$WORK/stages.tsv"

if [ -f "$WHEELS/SOURCE" ]; then
  SOURCE=$(head -1 "$WHEELS/SOURCE")
else
  SOURCE="checkout $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '(no git here)')"
fi

log() { echo "[gpu-check +$(( $(date +%s) - START ))s] $*" >>"$LOG"; }

summary() {
  "$PYTHON" "$REPO/scripts/gpu_check.py" summary --work "$WORK" --out "$OUT" --source "$SOURCE" >/dev/null 2>>"$LOG" \
    || log "writing summary.md failed"
}

# record STAGE RESULT SECONDS DETAIL: one row of the stage table, then a fresh summary.
FAILED=0
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4//$'\n'/ }" >>"$WORK/stages.tsv"
  log "stage $1: $2 ($3 s): $4"
  echo "gpu-check: $1: $2: $4"
  case "$2" in failed|"timed out") FAILED=1 ;; esac
  summary
}

# Seconds a stage may take: its cap, less what the later stages need at least, within the budget.
ORDER=(install imports device benchmark run report pytest)
declare -A CAP=([install]=40 [imports]=30 [device]=20 [benchmark]=60 [run]=140 [report]=20 [pytest]=120)
declare -A FLOOR=([install]=10 [imports]=10 [device]=5 [benchmark]=20 [run]=40 [report]=10 [pytest]=60)
limit_for() {
  local stage=$1 later=0 seen=0 s
  for s in "${ORDER[@]}"; do
    if [ "$seen" = 1 ] && ! skipped "$s"; then later=$((later + FLOOR[$s])); fi
    if [ "$s" = "$stage" ]; then seen=1; fi
  done
  local left=$((START + BUDGET - $(date +%s) - later - 5))
  if [ "$left" -lt "${CAP[$stage]}" ]; then echo "$left"; else echo "${CAP[$stage]}"; fi
}

skipped() { [[ "$SKIP" == *",$1,"* ]]; }

# bounded STAGE LOGFILE CMD...: run CMD under the stage's limit, output to LOGFILE; sets RC, SECS.
bounded() {
  local stage=$1 logfile=$2 limit t0
  shift 2
  limit=$(limit_for "$stage")
  if [ "$limit" -lt 5 ]; then
    RC=124 SECS=0
    log "$stage: no time left in the ${BUDGET} s budget"
    return
  fi
  log "$stage (limit ${limit} s): $*"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >>"$logfile" 2>&1
  RC=$?
  SECS=$(( $(date +%s) - t0 ))
  if [ "$RC" = 137 ]; then RC=124; fi
}

# Where there is no GPU, a GPU stage's command must refuse by itself, exit 2, with that reason.
refused_for_no_gpu() {
  local stage=$1 logfile=$2
  if [ "$RC" = 2 ] && grep -qF -- "$GPU_REASON" "$logfile"; then
    record "$stage" skipped "$SECS" "no GPU: $GPU_REASON (the command said so itself, exit 2)"
  else
    record "$stage" failed "$SECS" "expected exit 2 naming the missing GPU, got exit $RC (see $(basename "$logfile"))"
  fi
}

log "siliconbench GPU check of $SOURCE into $OUT; python: $(command -v "$PYTHON"); budget ${BUDGET} s"
summary

# --- install ---------------------------------------------------------------------------------
SB=("$PYTHON" -m harness)
if [ "$INSTALL" = 1 ]; then
  shopt -s nullglob
  wheels=("$WHEELS"/*.whl)
  own=("$WHEELS"/siliconbench-*.whl)
  shopt -u nullglob
  if [ "${#own[@]}" != 1 ]; then
    record install failed 0 "need exactly one siliconbench wheel in $WHEELS, found ${#own[@]}: run scripts/gpu-wheels.sh here and carry .whl"
  else
    SITE=$WORK/site
    t0=$(date +%s)
    bounded install "$LOG" "$PYTHON" -m pip install --no-index --no-deps --no-compile --no-cache-dir \
      --disable-pip-version-check --target "$SITE" "${wheels[@]}"
    install_rc=$RC
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    export PATH="$SITE/bin:$PATH"
    if [ -x "$SITE/bin/siliconbench" ]; then SB=("$SITE/bin/siliconbench"); fi
    bounded install "$LOG" "$PYTHON" scripts/gpu_check.py wheel-fresh "${own[0]}"
    fresh_rc=$RC
    timeout 60 "$PYTHON" -m pip check --disable-pip-version-check >"$WORK/pip-check.txt" 2>&1
    cat "$WORK/pip-check.txt" >>"$LOG"
    "$PYTHON" scripts/gpu_check.py pip-check "${wheels[@]}" <"$WORK/pip-check.txt" >>"$LOG" 2>&1
    check_rc=$?
    image_lines=$(grep -c "the image's own" "$LOG")
    secs=$(( $(date +%s) - t0 ))
    if [ "$install_rc" = 124 ]; then
      record install "timed out" "$secs" "pip install did not finish"
    elif [ "$install_rc" != 0 ]; then
      record install failed "$secs" "pip install exited $install_rc (see check.log)"
    elif [ "$fresh_rc" != 0 ]; then
      record install failed "$secs" "${own[0]##*/} differs from this checkout: rebuild with scripts/gpu-wheels.sh (see check.log)"
    elif [ "$check_rc" != 0 ]; then
      record install failed "$secs" "pip check names what we carried (see check.log)"
    else
      record install passed "$secs" "${#wheels[@]} wheels into a scratch PYTHONPATH, none of torch's; wheel = checkout; pip check: nothing about ours ($image_lines lines about the image's own)"
    fi
  fi
else
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  record install skipped 0 "--no-install: this interpreter's environment and this checkout"
fi

# --- imports ---------------------------------------------------------------------------------
under=()
if [ "$INSTALL" = 1 ] && [ -n "${SITE:-}" ]; then under=(--under "$SITE"); fi
# From the scratch folder, so that nothing is imported from this checkout by accident.
bounded imports "$LOG" bash -c 'cd "$1" && shift && "$@"' _ "$WORK" "$PYTHON" "$REPO/scripts/gpu_check.py" imports "${under[@]}"
if [ "$RC" = 0 ]; then
  bounded imports "$LOG" "${SB[@]}" --help
fi
if [ "$RC" = 0 ]; then
  record imports passed "$SECS" "$(grep -E '^imported [0-9]+ modules' "$LOG" | tail -1); siliconbench --help works"
elif [ "$RC" = 124 ]; then
  record imports "timed out" "$SECS" "see check.log"
else
  record imports failed "$SECS" "$(grep -c '^import failed' "$LOG") modules failed to import (see check.log)"
fi

# --- device ----------------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null 2>&1; then
  timeout 15 nvidia-smi >>"$LOG" 2>&1
fi
# The versions that matter, for the record (the image's may differ from ours).
timeout 30 "$PYTHON" -m pip list --disable-pip-version-check 2>/dev/null \
  | grep -iE '^(torch|triton|transformers|numpy|nvidia-ml-py|tabulate|matplotlib|jsonschema|pytest[a-z-]*|siliconbench) ' \
  >>"$LOG"
bounded device "$WORK/probe.txt" "$PYTHON" scripts/gpu_check.py probe
cat "$WORK/probe.txt" >>"$LOG"
probe_line=$(grep -E $'^(available|unavailable)\t' "$WORK/probe.txt" | tail -1)
GPU=0
GPU_REASON=""
if [ "$RC" = 0 ] && [ "${probe_line%%$'\t'*}" = available ]; then
  GPU=1
  record device passed "$SECS" "${probe_line#*$'\t'}"
elif [ "$RC" = 0 ] && [ -n "$probe_line" ]; then
  GPU_REASON=${probe_line#*$'\t'}
  if [ "$REQUIRE_GPU" = 1 ]; then
    record device failed "$SECS" "no GPU, and --require-gpu: $GPU_REASON"
  else
    record device skipped "$SECS" "no GPU: $GPU_REASON"
  fi
else
  GPU_REASON="the cuda backend could not be probed"
  record device failed "$SECS" "$GPU_REASON (exit $RC; see check.log)"
fi

# --- benchmark -------------------------------------------------------------------------------
if skipped benchmark; then
  record benchmark skipped 0 "--skip=benchmark"
else
  bounded benchmark "$OUT/benchmark.log" "$PYTHON" benchmarks/cuda_mlp_tflops.py --max-time "$MAX_TIME" \
    --json "$OUT/benchmark.json"
  if [ "$GPU" = 0 ]; then
    refused_for_no_gpu benchmark "$OUT/benchmark.log"
  elif [ "$RC" = 0 ]; then
    record benchmark passed "$SECS" "figures below"
  elif [ "$RC" = 124 ]; then
    record benchmark "timed out" "$SECS" "see benchmark.log"
  else
    record benchmark failed "$SECS" "exit $RC (see benchmark.log)"
  fi
fi

# --- run -------------------------------------------------------------------------------------
if skipped run; then
  record run skipped 0 "--skip=run"
else
  matrix=(--workload mlp --workload resnet50 --workload bert-base --batch-size 1 --batch-size "$LARGE_BATCH"
    --dtype bf16 --dtype fp32 --mode eager --mode cudagraph)
  # The CLI checks dtypes and modes only once the backend is there: check them here, GPU or not.
  bounded run "$OUT/run.log" "$PYTHON" scripts/gpu_check.py matrix "${matrix[@]}"
  matrix_rc=$RC
  if [ "$matrix_rc" = 0 ]; then
    bounded run "$OUT/run.log" "${SB[@]}" run --backend cuda "${matrix[@]}" --max-time "$MAX_TIME" \
      --output "$WORK/run" --format markdown
  fi
  runfile=$(ls "$WORK"/run/*.json 2>/dev/null | head -1)
  if [ -n "$runfile" ]; then cp "$runfile" "$OUT/run.json"; fi
  cells() { "$PYTHON" -c 'import json,sys; c=json.load(open(sys.argv[1]))["cells"]; print(len(c), sum(x["status"]!="ok" for x in c))' "$OUT/run.json" 2>/dev/null || echo "0 0"; }
  if [ "$matrix_rc" != 0 ]; then
    record run failed "$SECS" "$(grep -m1 "the run's cells are not valid" "$OUT/run.log" || echo "checking the cells: exit $matrix_rc (see run.log)")"
  elif [ "$GPU" = 0 ]; then
    refused_for_no_gpu run "$OUT/run.log"
  else
    read -r ncells nfailed < <(cells)
    if [ "$RC" = 0 ]; then
      record run passed "$SECS" "$ncells cells, all ok"
    elif [ "$RC" = 124 ]; then
      record run "timed out" "$SECS" "$ncells cells done, $nfailed failed"
    else
      record run failed "$SECS" "exit $RC: $ncells cells, $nfailed failed (see run.log)"
    fi
  fi
fi

# --- report ----------------------------------------------------------------------------------
if skipped report; then
  record report skipped 0 "--skip=report"
else
  if [ "$GPU" = 0 ]; then
    record report skipped 0 "no GPU: $GPU_REASON (no run file to report)"
  elif [ ! -f "$OUT/run.json" ]; then
    record report skipped 0 "no run file: the run stage wrote none"
  else
    bounded report "$LOG" "${SB[@]}" report --format html --output "$OUT/report.html" "$OUT/run.json"
    if [ "$RC" = 0 ] && [ -s "$OUT/report.html" ]; then
      record report passed "$SECS" "report.html, $(wc -c <"$OUT/report.html") bytes"
    elif [ "$RC" = 124 ]; then
      record report "timed out" "$SECS" "see check.log"
    else
      record report failed "$SECS" "exit $RC (see check.log)"
    fi
  fi
fi

# --- pytest -m gpu ---------------------------------------------------------------------------
if skipped pytest; then
  record pytest skipped 0 "--skip=pytest"
else
  per_test=$(( $(limit_for pytest) - 10 ))
  if [ "$per_test" -lt 10 ]; then per_test=10; fi
  pytest_args=(-m gpu -v -o filterwarnings=default --timeout "$per_test")
  if [ "$GPU" = 1 ] && "$PYTHON" -c 'import xdist' 2>/dev/null; then
    pytest_args+=(-n 4)
  fi
  bounded pytest "$OUT/pytest.log" "$PYTHON" -m pytest "${pytest_args[@]}"
  outcome=$(grep -E '^=+ .*\b(passed|failed|skipped|errors?|deselected|no tests ran)\b.* in [0-9.]+s' "$OUT/pytest.log" \
    | tail -1 | sed -E 's/^=+ //; s/ =+$//')
  # -ra lists skips as "SKIPPED [count] file:line: reason"; without a GPU each must give the reason.
  for_reason=$(awk -v r="$GPU_REASON" 'r != "" && index($0, r) && /^SKIPPED \[[0-9]+\]/ { gsub(/[^0-9]/, "", $2); n += $2 } END { print n + 0 }' "$OUT/pytest.log")
  if [ "$GPU" = 0 ]; then
    if [ "$RC" = 0 ] && ! [[ "$outcome" =~ (passed|failed|error) ]] && [[ "$outcome" =~ ^([0-9]+)\ skipped ]] \
      && [ "${BASH_REMATCH[1]}" = "$for_reason" ]; then
      record pytest skipped "$SECS" "no GPU: ${BASH_REMATCH[1]} gpu tests collected, each skipped for: $GPU_REASON"
    else
      record pytest failed "$SECS" "without a GPU every gpu test must skip; got exit $RC: ${outcome:-no outcome} (see pytest.log)"
    fi
  elif [ "$RC" = 0 ]; then
    record pytest passed "$SECS" "$outcome"
  elif [ "$RC" = 124 ]; then
    done_tests=$(grep -cE '(PASSED|FAILED|SKIPPED|ERROR)' "$OUT/pytest.log")
    record pytest "timed out" "$SECS" "$done_tests tests had finished (see pytest.log)"
  else
    record pytest failed "$SECS" "exit $RC: ${outcome:-no outcome} (see pytest.log)"
  fi
fi

log "done in $(( $(date +%s) - START )) s; failed: $FAILED"
exit "$FAILED"
