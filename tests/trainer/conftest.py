"""Shared fixtures: one torch thread (2-core machine shared with other suites), deterministic kernels."""
import pytest
import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


@pytest.fixture(scope="session")
def digits():
    from trainer.data import DatasetSpec, load_dataset

    return load_dataset(DatasetSpec("digits"))


@pytest.fixture(scope="session")
def mlp_spec():
    from trainer.zoo import ModelSpec

    return ModelSpec("mlp", {"in_dim": 64, "hidden": [32], "out_dim": 10})
