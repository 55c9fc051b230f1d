"""Preprocessing (aezoo/preprocessing.py): users' images -> what an entry was trained on."""

import warnings

import numpy as np
import pytest
from PIL import Image

import aezoo
from aezoo import preprocessing
from aezoo.demo import embedded_samples
from aezoo.errors import InputError
from aezoo.inputs import for_entry
from aezoo.preprocessing import Preprocessor, UnusualInputWarning, read_images


@pytest.fixture(scope="module")
def digits():
    return embedded_samples()["mnist"][:16]       # 16 real mnist_5k test digits, (16, 28, 28, 1) in [0, 1]


@pytest.fixture(scope="module")
def clothes():
    return embedded_samples()["fashion_mnist"][:16]


def _com(img):
    g = img[..., 0].astype("float64")
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return (yy * g).sum() / g.sum(), (xx * g).sum() / g.sum()


def _box(img, level=0.05):
    rows, cols = np.flatnonzero(img[..., 0].max(1) > level), np.flatnonzero(img[..., 0].max(0) > level)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_every_zoo_entry_has_a_preprocessor():
    data = preprocessing.config_data()
    for name in aezoo.list_models():
        prep = for_entry(name)
        dataset = aezoo.get_entry(name)["recipe"]["dataset"]
        assert prep.config.name == data["datasets"][dataset], name
        assert prep.output_shape == tuple(aezoo.get_entry(name)["config"]["input_shape"])
    assert for_entry("conv_mnist").config.framing == "mass_centred" and for_entry("conv_mnist").config.box == 20
    assert for_entry("conv_fashion_mnist").config.framing == "fit"


@pytest.mark.parametrize("name, sample", [("conv_mnist", "digits"), ("conv_fashion_mnist", "clothes")])
def test_the_datasets_own_images_pass_unchanged(name, sample, request):
    x = request.getfixturevalue(sample)
    out = aezoo.preprocess(name, x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=0.02)
    assert float(np.mean((out - x) ** 2)) < 1e-5


def test_value_ranges(digits):
    prep = for_entry("conv_mnist")
    want = prep(digits)
    u8 = (digits * 255).round().astype(np.uint8)
    for raw in (u8, u8.astype("float32"), u8.astype("int64"), (digits * 16).round(), digits * 2 - 1,
                (digits * 65535).round().astype(np.uint16), (digits * 4095).round()):
        np.testing.assert_allclose(prep(raw), want, atol=0.07)  # 0..16 loses grey levels, nothing else
    assert prep((digits * 16).round()).max() == pytest.approx(1.0)
    assert prep.last_report["value_range"] == [[0.0, 16.0]]
    explicit = prep((digits * 100).round(), value_range=(0, 100))
    np.testing.assert_allclose(explicit, want, atol=0.01)
    assert preprocessing.guess_range(np.array([0, 7, 16.0])) == (0.0, 16.0)
    assert preprocessing.guess_range(np.array([3, 200.0])) == (0.0, 255.0)
    assert preprocessing.guess_range(np.array([True, False])) == (0.0, 1.0)


def test_polarity_is_detected_and_fixed(digits, clothes):
    for name, x in (("conv_mnist", digits), ("conv_fashion_mnist", clothes)):
        prep = for_entry(name)
        out = prep(1.0 - x)
        assert prep.last_report["inverted"] == list(range(len(x)))
        np.testing.assert_allclose(out, prep(x), atol=1e-5)
        kept = prep(1.0 - x, polarity="keep")
        assert prep.last_report["inverted"] == [] and kept.mean() > out.mean() + 0.2
        prep(x, polarity="invert")
        assert prep.last_report["inverted"] == list(range(len(x)))


def test_ink_on_grey_paper(digits):
    """A dark digit on grey, grainy paper in a larger frame becomes a white digit on black, framed like MNIST."""
    rng = np.random.default_rng(0)
    prep = for_entry("conv_mnist")
    photos = []
    for img in digits[:, :, :, 0]:
        big = np.asarray(Image.fromarray(img, "F").resize((40, 40), Image.Resampling.BILINEAR))
        paper = 0.75 + 0.03 * rng.standard_normal((64, 64))
        paper[5:45, 17:57] -= 0.6 * np.clip(big, 0, 1)
        photos.append((np.clip(paper, 0, 1) * 255).astype(np.uint8))
    out = prep(photos)
    assert prep.last_report["inverted"] == list(range(len(digits)))
    for img in out:
        assert np.median(preprocessing._border(img[..., 0])) == 0.0       # black background, grain gone
        assert max(_box(img)) in (19, 20, 21)
        cy, cx = _com(img)
        assert abs(cy - 14) <= 0.6 and abs(cx - 14) <= 0.6
    assert float(np.mean((out - digits) ** 2)) < 0.02      # naive resizing: > 0.1 (benchmarks/preprocessing.py)


def test_mnist_framing_of_a_digit_filling_the_frame(digits):
    prep = for_entry("conv_mnist")
    filled = []
    for img in digits[:, :, :, 0]:
        rows, cols = np.flatnonzero(img.max(1) > 0.05), np.flatnonzero(img.max(0) > 0.05)
        crop = img[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
        filled.append(np.asarray(Image.fromarray(crop, "F").resize((28, 28), Image.Resampling.BILINEAR)))
    out = prep(np.stack(filled))
    for img in out:
        assert max(_box(img)) in (19, 20, 21)      # the 20x20 box, not the whole 28x28 field
        cy, cx = _com(img)
        assert abs(cy - 14) <= 0.6 and abs(cx - 14) <= 0.6
    resized_only = prep(np.stack(filled), framing="resize")
    assert np.mean((out - digits) ** 2) < 0.5 * np.mean((resized_only - digits) ** 2)


def test_fashion_fit_framing(clothes):
    prep = for_entry("conv_fashion_mnist")
    small = np.zeros_like(clothes)
    for i, img in enumerate(clothes[:, :, :, 0]):
        half = np.asarray(Image.fromarray(img, "F").resize((14, 14), Image.Resampling.BILINEAR))
        small[i, 2:16, 12:26, 0] = np.clip(half, 0, 1)
    out = prep(small)
    for img in out:
        h, w = _box(img)
        assert max(h, w) >= 26                       # longest edge back to 28
        rows, cols = np.flatnonzero(img[..., 0].max(1) > 0), np.flatnonzero(img[..., 0].max(0) > 0)
        assert abs(rows[0] - (27 - rows[-1])) <= 2 and abs(cols[0] - (27 - cols[-1])) <= 2   # centred


def test_pil_paths_colour_and_sizes(digits, tmp_path):
    prep = for_entry("conv_mnist")
    u8 = (digits[:3, :, :, 0] * 255).astype(np.uint8)
    big_inverted = Image.fromarray(255 - u8[0]).resize((84, 84))
    big_inverted.save(tmp_path / "a.png")
    Image.fromarray(np.repeat(u8[1][..., None], 3, axis=-1)).resize((56, 56)).save(tmp_path / "b.jpg", quality=95)
    rgba = Image.fromarray(np.dstack([u8[2]] * 3 + [np.full_like(u8[2], 255)]), "RGBA")
    out = prep([tmp_path / "a.png", str(tmp_path / "b.jpg"), rgba, u8[0]])
    assert out.shape == (4, 28, 28, 1) and out.dtype == np.float32
    assert prep.last_report["inverted"] == [0]
    np.testing.assert_allclose(out[2], digits[2], atol=0.02)          # RGBA -> grey, same digit
    assert np.mean((out[0] - digits[0]) ** 2) < 0.01 and np.mean((out[1] - digits[1]) ** 2) < 0.02
    one = prep(tmp_path / "a.png")
    assert one.shape == (1, 28, 28, 1)


def test_read_images(digits, tmp_path):
    u8 = (digits[:4, :, :, 0] * 255).astype(np.uint8)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(u8):
        Image.fromarray(img).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    images, what = read_images(folder)
    assert len(images) == 4 and "4 image files" in what
    np.save(tmp_path / "x.npy", u8)
    np.savez(tmp_path / "x.npz", images=u8, labels=np.arange(4))
    for path in (tmp_path / "x.npy", tmp_path / "x.npz", folder):
        out = for_entry("conv_mnist")(path)
        np.testing.assert_allclose(out, digits[:4], atol=0.01)
    with pytest.raises(InputError, match="does not exist"):
        read_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        read_images(tmp_path / "empty")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="not an image"):
        read_images(tmp_path / "bad.png")
    np.savez(tmp_path / "two.npz", a=u8, b=u8)
    with pytest.raises(InputError, match="name the images"):
        read_images(tmp_path / "two.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="plain numeric"):
        read_images(tmp_path / "obj.npy")


def test_bad_input(digits):
    prep = for_entry("conv_mnist")
    bad = digits.copy()
    bad[0, 3, 3, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        prep(bad)
    with pytest.raises(InputError, match="numeric"):
        prep(np.array(["a", "b"]))
    with pytest.raises(InputError, match="empty"):
        prep([])
    with pytest.raises(InputError, match="framing"):
        prep(digits, framing="crop")
    with pytest.raises(InputError, match="value_range"):
        prep(digits, value_range=(1, 0))
    with pytest.raises(InputError, match="polarity"):
        prep(digits, polarity="maybe")
    with pytest.raises(InputError, match="size"):
        preprocessing.PreprocessConfig(size=(0, 28))


def test_graph_fn_matches_numpy(digits):
    """The in-graph steps (range, polarity, background, stretch) equal the numpy ones."""
    import keras

    prep = for_entry("conv_mnist")
    rng = np.random.default_rng(1)
    grey_paper = np.clip(0.7 + 0.02 * rng.standard_normal(digits.shape) - 0.5 * digits, 0, 1)
    raw = np.concatenate([digits, 1.0 - digits, grey_paper]) * 255.0
    want = prep(raw.astype("float32"), framing="resize", value_range=(0, 255))
    got = keras.ops.convert_to_numpy(prep.graph_fn()(keras.ops.convert_to_tensor(raw.astype("float32"))))
    np.testing.assert_allclose(got, want, atol=1e-5)
    bigger = keras.ops.convert_to_numpy(prep.graph_fn(input_size=(56, 56))(
        keras.ops.convert_to_tensor(np.repeat(np.repeat(raw[:4], 2, 1), 2, 2).astype("float32"))))
    assert bigger.shape == (4, 28, 28, 1)
    np.testing.assert_allclose(bigger, want[:4], atol=0.05)
    card = prep.describe(in_graph=True, input_size=(56, 56))
    assert card["input"]["size"] == [56, 56] and card["input"]["range"] == [0.0, 255.0]
    assert any("resize" in s for s in card["in_graph"]) and any("centre of mass" in s for s in card["app_steps"])


@pytest.fixture(scope="module")
def conv_mnist():
    return aezoo.load("conv_mnist")


def test_input_check_warns_on_unusual_images(conv_mnist, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusualInputWarning)
        out = conv_mnist.preprocess(digits)
    np.testing.assert_allclose(out, digits, atol=0.02)
    check = preprocessing.stored_check(conv_mnist)
    assert check.fpr == 0.01 and "mnist_5k validation" in check.source and check.score == "mse"
    with pytest.warns(UnusualInputWarning, match="look unlike the training data"):
        conv_mnist.preprocess(1.0 - digits, polarity="keep")  # not fixed: unusual
    result = check(1.0 - digits, warn=False)
    assert len(result["flagged"]) == len(digits)
    with pytest.warns(UnusualInputWarning, match="1 of 1 images"):   # a lone odd image is enough
        check(1.0 - digits[:1])
    with warnings.catch_warnings():   # 1 flagged of 32 ordinary images is what 1% false positives gives
        warnings.simplefilter("error", UnusualInputWarning)
        mixed = np.concatenate([digits[:31], 1.0 - digits[:1]])
        assert check(mixed)["p_value"] > 0.01
    yours = aezoo.load("conv_mnist", weights=aezoo.weights.resolve("conv_mnist"))
    assert preprocessing.stored_check(yours) is None          # your own weights: calibrate them yourself


def test_stored_thresholds_are_the_detectors(conv_mnist):
    """input_checks.json holds, for every published entry, the threshold of an AnomalyDetector("mse")
    calibrated on its validation split, for the weights that are published."""
    from aezoo.tasks.anomaly import AnomalyDetector

    data = preprocessing.check_data()["entries"]
    for name in aezoo.list_models():
        for version in aezoo.weights.published_versions(name):
            stored = data[name][str(version)]
            assert stored["weights_sha256"] == aezoo.weights.record(name, version)["sha256"], \
                f"{name} v{version}: run python -m aezoo.inputs build"
    x_val, _ = aezoo.datasets.load_numpy("mnist_5k", "validation")
    det = AnomalyDetector(conv_mnist, score="mse").fit(x_val, fpr=0.01)
    version = conv_mnist.zoo_entry["version"]
    assert data["conv_mnist"][str(version)]["threshold"] == pytest.approx(det.threshold, rel=1e-6)


def test_calibrate_with_and_without_the_detector(conv_mnist, digits, monkeypatch):
    from aezoo import inputs
    from aezoo.tasks import anomaly

    x_val, _ = aezoo.datasets.load_numpy("mnist_5k", "validation")
    model = aezoo.load("conv_mnist")
    check = inputs.calibrate(model, x_val, "mnist_5k validation")
    assert preprocessing.stored_check(model) is check and model.input_check_config["threshold"] == check.threshold
    scores = np.sort(np.asarray(conv_mnist.anomaly_score(x_val)))
    assert check.threshold == pytest.approx(scores[int(np.ceil(501 * 0.99)) - 1])
    small = inputs.calibrate(aezoo.load("conv_mnist"), x_val[:20], "20 images")   # too few for the detector at 1%
    assert small.threshold == pytest.approx(float(np.max(conv_mnist.anomaly_score(x_val[:20]))))
    assert len(check(1.0 - digits, warn=False)["flagged"]) == len(digits)


def test_the_range_error_names_the_range(conv_mnist, digits):
    """0..16 data (scikit-learn's digits) is told to divide by 16, not by 255."""
    with pytest.raises(InputError, match="looks like 0..16: divide by 16") as info:
        conv_mnist.reconstruct((digits * 16).round())
    assert "255" not in str(info.value) and "model.preprocess" in str(info.value)
    with pytest.raises(InputError, match="looks like 0..255: divide by 255"):
        conv_mnist.reconstruct(digits * 255)
