"""ml.allocator: freed training buffers stay in the process while a training runs and go back after it, and the
trained weights are the same either way."""

from __future__ import annotations

import ctypes
import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from ml.allocator import _glibc, held_memory, set_enabled

SIZE = 40 << 20  # over glibc's largest dynamic mmap threshold (32 MiB): always unmapped again under the defaults


def _faults_of_reuse(libc: ctypes.CDLL, times: int = 20) -> int:
    """Minor page faults of allocating, touching and freeing one SIZE buffer `times` times."""
    libc.malloc.argtypes, libc.malloc.restype = [ctypes.c_size_t], ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        buffer = libc.malloc(SIZE)
        ctypes.memset(buffer, 1, SIZE)
        libc.free(buffer)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _reuse_in_a_fresh_process() -> dict[str, int]:
    """Faults of reuse before, inside (nested, then the outer block alone) and after held blocks, counted in this
    module run as a new interpreter: a process that has trained already may hold a free hole in its heap that serves
    the buffer without faults whatever the thresholds, so the glibc defaults' side is only defined on a fresh heap."""
    libc = _glibc()
    assert libc is not None
    counts = {"before": _faults_of_reuse(libc)}
    with held_memory():
        with held_memory():
            counts["nested"] = _faults_of_reuse(libc)
        counts["outer"] = _faults_of_reuse(libc)
    counts["after"] = _faults_of_reuse(libc)
    return counts


def test_freed_buffers_stay_while_held_and_go_back_after_the_last_block() -> None:
    if _glibc() is None:
        pytest.skip("not glibc: ml.allocator does nothing here")
    out = subprocess.run([sys.executable, __file__], capture_output=True, text=True, check=True).stdout
    counts = json.loads(out)
    pages = SIZE // resource.getpagesize()
    assert counts["before"] > 10 * pages  # every buffer faulted in anew
    assert counts["nested"] < 3 * pages  # faulted in once, then reused
    assert counts["outer"] < 3 * pages  # an inner block's end leaves an outer one held
    assert counts["after"] > 10 * pages


@pytest.mark.ml
def test_a_training_is_the_same_with_glibc_defaults(tmp_path: Path) -> None:
    import torch

    from ml import checkpoint
    from ml.data import InMemorySource
    from ml.interfaces import TrainConfig
    from ml.ssl import train
    from ml.synthetic import generate_scene

    torch.set_num_threads(1)
    scenes = {f"s{i}": generate_scene(i, 128) for i in range(4)}
    labelled = InMemorySource({k: v[0] for k, v in scenes.items()}, {k: v[1] for k, v in scenes.items()})
    config = TrainConfig(method="supervised", crop_size=128, batch_labeled=4, steps=2, device="cpu", seed=0)
    weights = []
    for held in (True, False):
        set_enabled(held)
        try:
            result = train(config, labelled, None, None, checkpoint_path=tmp_path / f"{held}.pt")
        finally:
            set_enabled(True)
        weights.append(checkpoint.load(result.checkpoint)["modules"])
    for name, module in weights[0].items():
        for key, tensor in module.items():
            assert torch.equal(tensor, weights[1][name][key]), f"{name}.{key}"


if __name__ == "__main__":
    print(json.dumps(_reuse_in_a_fresh_process()))
