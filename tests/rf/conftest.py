"""Fixtures of the RF tests."""

import numpy as np
import pytest

from tests.helpers.sigmf import write_recording


@pytest.fixture
def make_recording(tmp_path):
    def make(name="rec", data=None, **kwargs):
        if data is None:
            data = np.zeros(1000, dtype="<c8")
        return write_recording(tmp_path, name, data, **kwargs)

    return make
