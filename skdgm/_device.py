"""Devices, precision and seeding, shared by the torch core and the encoders.

Device selection, the bfloat16-or-float32 choice, and seeding that leaves global random
states untouched.
"""

from __future__ import annotations

import contextlib
import logging
import time

import torch

logger = logging.getLogger("skdgm")

_CPU_BFLOAT16_FASTER: bool | None = None


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; check that a requested CUDA exists."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a device; use 'auto', 'cpu' or 'cuda'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available on this machine; use 'auto' or 'cpu'."
        )
    return resolved


@contextlib.contextmanager
def fork_rng(device: torch.device, seed: int):
    """Seed torch inside the block and restore torch's global random states after it.

    torch's only (CPU and ``device``'s CUDA generator): Python's and numpy's are not
    touched by the package's own training loops. For third-party code that seeds every
    generator itself, see :func:`global_rng_kept`.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def global_rng_kept():
    """Put Python's, numpy's and torch's (CPU and every CUDA device's) global states back.

    For third-party training code that seeds the global generators itself (setfit calls
    transformers' ``set_seed``); the package's own loops use :func:`fork_rng`.
    """
    import random

    import numpy as np

    # The legacy global generators are what such code changes and what must be put back.
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002


def resolve_precision(precision: str, device) -> str:
    """``"auto"`` -> bfloat16 where it is supported and faster, else float32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device.type == "cpu" and cpu_bfloat16_is_faster():
        return "bfloat16"
    return "float32"


def cpu_bfloat16_is_faster() -> bool:
    """Whether bfloat16 matrix products clearly beat float32 ones on this CPU.

    A CPU flag is not enough: on some CPUs that report ``avx512_bf16`` (e.g. a
    virtualised Xeon) bfloat16 runs slower than float32, on others (e.g. AMD Zen 4)
    about 1.5 times faster. So time an encoder-sized product once per process (about
    0.2 s); bfloat16 must win by 20 %, so that the choice does not flip between runs.
    """
    global _CPU_BFLOAT16_FASTER
    if _CPU_BFLOAT16_FASTER is None:
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        if not any(getattr(torch.cpu, check, lambda: False)() for check in checks):
            _CPU_BFLOAT16_FASTER = False
        else:
            generator = torch.Generator().manual_seed(0)
            inputs = torch.randn(1024, 384, generator=generator)
            weight = torch.randn(1536, 384, generator=generator)
            timings = {}
            with torch.inference_mode():
                for dtype in (torch.float32, torch.bfloat16, torch.float32, torch.bfloat16):
                    x, w = inputs.to(dtype), weight.to(dtype)
                    torch.nn.functional.linear(x, w)  # warm-up
                    start = time.perf_counter()
                    for _ in range(3):
                        torch.nn.functional.linear(x, w)
                    elapsed = time.perf_counter() - start
                    timings[dtype] = min(elapsed, timings.get(dtype, elapsed))
            _CPU_BFLOAT16_FASTER = timings[torch.bfloat16] < 0.8 * timings[torch.float32]
            logger.debug("CPU matmul timings float32 vs bfloat16: %s", timings)
    return _CPU_BFLOAT16_FASTER
