#!/usr/bin/env bash
# Every GPU check of the project in one run, for a machine with CuPy and a CUDA device.
#
#   OUT=/path/to/results bash benchmarks/device_run.sh
#
# Runs from the repository root without installing anything (PYTHONPATH=.), needs only
# NumPy, SciPy, CuPy and pytest (tests that need hypothesis skip themselves), and writes
# everything to $OUT (default ./device_out): the card, the GPU tests, the GPU benchmarks and
# their JSON results, and summary.txt with one line and the exit status per step.  Each step
# has its own time limit, so a slow step cannot take the others' results with it; the steps
# come in order of importance (correctness first), about 8 minutes in all on an H200.
set -u
OUT=${OUT:-device_out}
mkdir -p "$OUT"
export PYTHONPATH=.
summary="$OUT/summary.txt"
: > "$summary"
sleep 1      # so that the results written by the steps are strictly newer

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    echo "$name: rc=$rc, $((SECONDS - t0)) s (limit $limit s): $*" >> "$summary"
}

step gpu_info 60 bash -c 'nvidia-smi; python3 -c "import cupy, numpy, scipy; \
print(\"cupy\", cupy.__version__, \"numpy\", numpy.__version__, \"scipy\", scipy.__version__); \
print(cupy.cuda.runtime.getDeviceProperties(0)[\"name\"].decode())"'
step pytest_gpu 240 python3 -m pytest -m gpu -q -p no:cacheprovider -x
step bench_matvec 120 python3 benchmarks/bench_matvec.py --device cupy
step bench_layer 90 python3 benchmarks/bench_layer.py --device cupy --cases fc6,1024
step train_mnist 90 python3 -m tensortrain train-mnist --device cupy --epochs 3 --no-progress
step table3 60 python3 benchmarks/paper/table3_inference.py --device cupy --no-plot
# the JSON results this run wrote (newer than the summary file it started with)
find benchmarks/results -name '*.json' -newer "$summary" -exec cp {} "$OUT"/ \;
cat "$summary"
