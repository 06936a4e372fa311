import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def text_encoder():
    from reelforge.models.text_encoder import TextEncoder
    return TextEncoder()
