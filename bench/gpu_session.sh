#!/usr/bin/env bash
# One device call (issue 12 item 5), run on a lent GPU machine from the repository root after bench/gpu_prepare.sh
# filled .device/ here (the call carries it). Within DEADLINE seconds:
# - the CUDA / bf16 paths: tests/unit/test_cuda_paths.py (no database needed, hence --noconftest);
# - the `cpu` profile's label-efficiency configurations, five seeds each, on the GPU (same code, same ids, same
#   schedule as on the CPU; bf16 autocast on CUDA), into bench/results/label_efficiency_gpu/;
# - full supervision and the 3% pipeline under the `paper` profile at the largest schedule that fits the call
#   (256² crops: the dev images are 256²), into bench/results/label_efficiency_gpu_paper/.
# Chains run side by side, one process per chain, one CPU thread each; a chain that runs out of time stops at its
# last finished round (round JSONs are written one by one). What is done comes back as $OUT/results.tgz.
set -u
cd "$(dirname "$0")/.."
DEADLINE=${DEADLINE:-520}
start=$(date +%s)
left() { echo $((DEADLINE - ($(date +%s) - start))); }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/whl/*.whl || exit 3
export PYTHONPATH=$PWD/.device/site:/tmp/site:$PWD OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
LOGS=/tmp/logs
mkdir -p "$OUT" "$LOGS"
DATA=.device/data/ai4mars-msl256-dev
R=bench/results/label_efficiency_gpu
P=bench/results/label_efficiency_gpu_paper
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || [ "${DEVICE:-cuda}" = cpu ]
  python3 -c "import torch, timm, segmentation_models_pytorch as smp, numpy, scipy; from ml.network import build_model; \
build_model(); print('torch', torch.__version__, 'timm', timm.__version__, 'smp', smp.__version__, \
torch.cuda.is_available() and torch.cuda.get_device_name(), torch.cuda.is_available() and torch.cuda.is_bf16_supported())"
} >"$OUT/environment.txt" 2>&1 || { cat "$OUT/environment.txt"; exit 4; }
cat "$OUT/environment.txt"

run() {
  local t
  t=$(left)
  [ "$t" -gt 5 ] || return 124 # timeout 0 would mean no limit
  timeout "$t" python3 bench/label_efficiency.py run --device "${DEVICE:-cuda}" --threads 1 --data "$DATA" "$@"
}

timeout 300 python3 -m pytest --noconftest -p no:cacheprovider -q tests/unit/test_cuda_paths.py >"$OUT/pytest.txt" 2>&1 &
for s in ${SEEDS:-0 1 2 3 4}; do
  (run --results $R --config st-ueq-4r-kcenter --seeds $s && run --results $R --config st-random-4r-kcenter --seeds $s) \
    >"$LOGS/st-$s.log" 2>&1 &
  (run --results $R --config sup-3pct --seeds $s && run --results $R --config sup-3pct-st --seeds $s &&
    run --results $R --config sup-3pct-wcedice --seeds $s && run --results $R --config sup-3pct-long --seeds $s) \
    >"$LOGS/sup-$s.log" 2>&1 &
done
[ "${PAPER:-1}" = 1 ] && (run --results $P --profile paper --config full-supervised --seeds 0 --steps "${PAPER_FULL_STEPS:-5000}") \
  >"$LOGS/paper-full.log" 2>&1 &
[ "${PAPER:-1}" = 1 ] && (run --results $P --profile paper --config st-ueq-4r-kcenter --seeds 0 --crop 256 --steps "${PAPER_SSL_STEPS:-800}" \
  --st-steps "${PAPER_SSL_STEPS:-800}") >"$LOGS/paper-st-ueq-4r-kcenter.log" 2>&1 &
( # GPU use while the chains run, every 20 s
  while sleep 20; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done
) >"$LOGS/gpu-use.log" 2>&1 &
monitor=$!
wait $(jobs -p | grep -v "^$monitor$")
kill $monitor 2>/dev/null
echo "runs ended after $(($(date +%s) - start)) s"
for f in "$LOGS"/*.log; do tr '\r' '\n' <"$f" | grep -v "it/s\]$" | tail -n 40 >"$f.tail"; done
tar czf "$OUT/results.tgz" $R $P -C /tmp logs
cat "$OUT/pytest.txt" | tail -n 15
grep -h "rounds, final" "$LOGS"/*.log
