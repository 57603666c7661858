"""Model-based FEEL's upload (strategy.model_feel): the update quantized to the bits."""

import numpy as np

from strategy.model_feel import uploaded_model


def test_upload_quantizes_the_update_to_the_bits_and_keeps_integers():
    rng = np.random.default_rng(0)
    reference = {"w": rng.normal(size=1000).astype(np.float32), "n": np.array(3, np.int64)}
    local = {"w": reference["w"] + rng.normal(size=1000).astype(np.float32), "n": np.array(4)}
    exact = uploaded_model(local, reference, 32, rng)
    np.testing.assert_array_equal(exact["w"], local["w"])
    coarse = uploaded_model(local, reference, 4, np.random.default_rng(1))
    update = local["w"] - reference["w"]
    step = np.ptp(update) / (2**4 - 1)
    error = coarse["w"] - local["w"]
    assert np.all(np.abs(error) <= step * 1.001) and np.any(error != 0)
    assert abs(error.mean()) < step / 10  # unbiased
    assert coarse["n"] == 4
