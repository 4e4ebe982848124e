"""Devices and seeding (``skdgm/_device.py``): global random states are left alone."""

import random

import numpy as np
import pytest
import torch

from skdgm._device import fork_rng, global_rng_kept, resolve_device


def _draws():
    return random.random(), np.random.random(), torch.rand(1).item()  # noqa: NPY002


def test_fork_rng_seeds_torch_and_restores_its_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with fork_rng(torch.device("cpu"), 7):
        inside = torch.rand(3)
    with fork_rng(torch.device("cpu"), 7):
        again = torch.rand(3)
    assert torch.equal(inside, again)  # seeded inside the block
    assert torch.equal(torch.rand(3), expected)  # torch's stream goes on as if untouched


def test_global_rng_kept_restores_python_numpy_and_torch():
    random.seed(1)
    np.random.seed(1)  # noqa: NPY002
    torch.manual_seed(1)
    expected = _draws()
    random.seed(1)
    np.random.seed(1)  # noqa: NPY002
    torch.manual_seed(1)
    with global_rng_kept():
        # What third-party code such as setfit's set_seed does.
        random.seed(99)
        np.random.seed(99)  # noqa: NPY002
        torch.manual_seed(99)
        _draws()
    assert _draws() == expected


def test_global_rng_kept_restores_after_an_error():
    random.seed(2)
    expected = random.random()
    random.seed(2)
    with pytest.raises(RuntimeError), global_rng_kept():
        random.seed(5)
        raise RuntimeError("training failed")
    assert random.random() == expected


def test_resolve_device_names_what_to_use():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="'auto', 'cpu' or 'cuda'"):
        resolve_device("tpu-ish")
