"""aezoo.tasks.compress: uniform quantization, entropy estimate, JPEG/PNG sizes."""

import numpy as np
import pytest

from aezoo import tasks
from aezoo.errors import InputError
from aezoo.tasks import compress
from tests.conftest import make_images


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantization_round_trip_error_is_at_most_half_a_step(bits):
    rng = np.random.default_rng(0)
    z_train = rng.normal(0, [1, 5, 0.1], (1000, 3))
    lo, hi = compress.fit_ranges(z_train)
    q = compress.quantize(z_train, lo, hi, bits)
    assert q.min() == 0 and q.max() == 2 ** bits - 1
    error = np.abs(compress.dequantize(q, lo, hi, bits) - z_train)
    step = (hi - lo) / (2 ** bits - 1)
    assert np.all(error <= step / 2 + 1e-6) and np.all(error.max(axis=0) > step / 4)
    outside = compress.dequantize(compress.quantize(hi[None] + 10, lo, hi, bits), lo, hi, bits)
    np.testing.assert_allclose(outside[0], hi, rtol=1e-6)  # clipped to the train range
    with pytest.raises(InputError):
        compress.quantize(z_train, lo, hi, 0)


def test_entropy_estimate():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 16, (20000, 2))
    assert compress.entropy_bytes(uniform[:5000], uniform[5000:], 4) == pytest.approx(2 * 4 / 8, rel=0.01)
    constant = np.zeros((1000, 2), dtype=int)
    assert compress.entropy_bytes(constant, constant, 4) < 0.01


def test_jpeg_bytes_rise_with_quality_and_png_is_lossless():
    x = make_images(20)
    sizes, psnrs = [], []
    for q in (10, 50, 95):
        size, decoded = compress.jpeg(x, q)
        sizes.append(size)
        psnrs.append(tasks.psnr_pooled(x, decoded))
    assert sizes[0] < sizes[1] < sizes[2] and psnrs[0] < psnrs[1] < psnrs[2]
    assert compress.png_bytes(x) > 0


def test_rate_distortion_improves_with_bits():
    rng = np.random.default_rng(0)
    x = rng.random((50, 4, 4, 1)).astype("float32")
    flat = x.reshape(50, -1)
    rd = compress.rate_distortion(flat, flat, lambda z: z.reshape(-1, 4, 4, 1), x, bits=(2, 4, 8))
    assert rd["32"]["psnr"] == float("inf") and rd["32"]["bytes"] == 64
    assert rd["2"]["psnr"] < rd["4"]["psnr"] < rd["8"]["psnr"]
    assert rd["8"]["bytes"] == 16 and rd["2"]["bytes"] == 4
    assert rd["2"]["entropy_bytes"] <= rd["2"]["bytes"] + 0.1
