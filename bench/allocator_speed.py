"""Training step time and memory with glibc's default allocator thresholds against ml.allocator's held ones.

    .venv/bin/python bench/allocator_speed.py --pairs 3 -- --threads 2 --steps 10 --size 192 --methods supervised

Each pair runs bench/train_speed.py (the arguments after `--`) once with `--glibc-defaults` and once as training
runs everywhere (ml.allocator.held_memory), alternating which goes first, and prints seconds a step, system seconds,
minor page faults and resident memory after the training and at its peak, and the ratio of the mean step times.
With glibc's defaults, buffers a step frees are unmapped or trimmed and their pages faulted in again next step.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

TRAIN_SPEED = Path(__file__).with_name("train_speed.py")
LINE = re.compile(r"([0-9.]+) s/step.*resident after: ([0-9]+) MiB, peak ([0-9]+) MiB")


def run_once(args: list[str], held: bool) -> tuple[float, float, int, int, int]:
    """(seconds a step of the first method, system seconds, minor page faults, MiB resident after, MiB at peak)."""
    flags = [] if held else ["--glibc-defaults"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, str(TRAIN_SPEED), *args, *flags], capture_output=True, text=True, check=True
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = LINE.search(out)
    if match is None:
        raise RuntimeError(f"no step time in train_speed's output:\n{out}")
    step, resident, peak = float(match.group(1)), int(match.group(2)), int(match.group(3))
    return step, after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt, resident, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("train_speed_args", nargs="*", help="arguments for bench/train_speed.py (after --)")
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    for pair in range(args.pairs):
        order = (False, True) if pair % 2 == 0 else (True, False)
        for held in order:
            step, system, faults, resident, peak = run_once(args.train_speed_args, held)
            times[held].append(step)
            name = "held" if held else "glibc defaults"
            print(
                f"pair {pair + 1} {name:14} {step:.2f} s/step  {system:.1f} s system  {faults:,} minor faults  "
                f"{resident} MiB resident after, {peak} MiB peak"
            )
    default, held_mean = statistics.mean(times[False]), statistics.mean(times[True])
    print(f"mean s/step: glibc defaults {default:.2f}, held {held_mean:.2f}; ratio {held_mean / default:.2f}x")


if __name__ == "__main__":
    main()
