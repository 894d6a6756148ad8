#!/usr/bin/env bash
# Runs the whole label-efficiency set in the order that is most informative first (seed 0 of every
# configuration, then seeds 1 and 2), then prints the summary. Resumable: rerun it after a stop and
# finished rounds are read from their JSON. About 3 hours on 2 idle CPU cores (bench/label_efficiency.py).
set -euo pipefail
cd "$(dirname "$0")/.."
run() { .venv/bin/python bench/label_efficiency.py run --threads 2 "$@"; }
run --config full-supervised
for seed in 0 1 2; do
  run --config sup-3pct --seeds "$seed"
  run --config cps-ueq --seeds "$seed"
  run --config cps-random --seeds "$seed"
  run --config cps-entropy --seeds "$seed"
  run --config s5mars-ueq --seeds "$seed"
done
.venv/bin/python bench/label_efficiency.py summary
