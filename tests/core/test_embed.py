import numpy as np
import pytest

from toolkiln.embed import embed_texts

TEXTS = [
    "get weather forecast: Get the weather forecast for a city. (city, days)",
    "What will the weather be in Lyon tomorrow?",
    "book hotel: Book a hotel by its id. (hotel id, nights)",
]


@pytest.mark.parametrize(("dtype", "min_cosine"), [("bfloat16", 0.995), ("int8", 0.9)])
def test_reduced_precision_encoders_agree_with_float32_and_stay_unit_norm(dtype, min_cosine):
    e32 = embed_texts(TEXTS)
    low = embed_texts(TEXTS, dtype=dtype)
    assert low.dtype == np.float32 and low.shape == (3, 384)
    assert np.allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)
    assert not np.array_equal(low, e32)  # the encoder really ran at the lower precision
    assert (e32 * low).sum(axis=1).min() > min_cosine
    # the ranking the consistency check relies on survives: the request is nearest the weather API
    sims = low[[0, 2]] @ low[1]
    assert sims[0] > sims[1]


def test_unknown_dtype_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="float16.*float32"):
        embed_texts(TEXTS, dtype="float16")
