"""Device selection and seeding that leave global random states untouched."""

from __future__ import annotations

import contextlib

import torch


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
    """Seed torch inside the block and restore every global random state after it."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda" if devices else "cuda"):
        torch.manual_seed(seed)
        yield
