#!/usr/bin/env bash
# Runs the label-efficiency set in the order that is most informative first: the aims' configurations (supervised
# 3%, the 3% pipeline with ueq and with random) seed by seed, then 3 seeds of the ablations, then prints the summary.
# Resumable: rerun it after a stop and finished rounds are read from their JSON. One seed of the aims' configurations
# costs about an hour on 2 CPU cores; the earlier passes' cps-*/s5mars runs are kept, not rerun
# (bench/results/label_efficiency/NOTES.md).
set -euo pipefail
cd "$(dirname "$0")/.."
run() { .venv/bin/python bench/label_efficiency.py run --threads "${THREADS:-2}" "$@"; }
run --config full-supervised
for seed in 0 1 2 3 4; do
  run --config sup-3pct --seeds "$seed"
  run --config st-ueq-4r-kcenter --seeds "$seed"
  run --config st-random-4r-kcenter --seeds "$seed" # shares st-ueq-4r-kcenter's round 0
done
for seed in 0 1 2; do
  for config in sup-3pct-st sup-3pct-wcedice sup-3pct-long sup-3pct-rare st-ueq-kmeans; do
    run --config "$config" --seeds "$seed"
  done
done
.venv/bin/python bench/label_efficiency.py summary
