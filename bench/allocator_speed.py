"""Training step time with glibc's default allocator settings against large mmap and trim thresholds, side by side.

    .venv/bin/python bench/allocator_speed.py --pairs 3 -- --threads 2 --steps 10 --size 192 --methods supervised

Each pair runs bench/train_speed.py (the arguments after `--`) once with the default environment and once with
MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ raised, alternating which goes first, and prints seconds a step,
system seconds and minor page faults of each, and the ratio of the mean step times. With the defaults, tensors over
the dynamic mmap threshold are mapped and unmapped every step and their pages faulted in again.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

TRAIN_SPEED = Path(__file__).with_name("train_speed.py")
TUNED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
STEP = re.compile(r"([0-9.]+) s/step")


def run_once(args: list[str], tuned: bool) -> tuple[float, float, int]:
    """(seconds a step of the first method, system seconds, minor page faults) of one train_speed run."""
    env = {k: v for k, v in os.environ.items() if k not in TUNED}
    if tuned:
        env.update(TUNED)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, str(TRAIN_SPEED), *args], env=env, capture_output=True, text=True, check=True
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = STEP.search(out)
    if match is None:
        raise RuntimeError(f"no step time in train_speed's output:\n{out}")
    return float(match.group(1)), after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("train_speed_args", nargs="*", help="arguments for bench/train_speed.py (after --)")
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    for pair in range(args.pairs):
        order = (False, True) if pair % 2 == 0 else (True, False)
        for tuned in order:
            step, system, faults = run_once(args.train_speed_args, tuned)
            times[tuned].append(step)
            name = "large thresholds" if tuned else "defaults"
            print(f"pair {pair + 1} {name:16} {step:.2f} s/step  {system:.1f} s system  {faults:,} minor faults")
    default, tuned_mean = statistics.mean(times[False]), statistics.mean(times[True])
    print(f"mean s/step: defaults {default:.2f}, large thresholds {tuned_mean:.2f}; ratio {tuned_mean / default:.2f}x")


if __name__ == "__main__":
    main()
