"""Phantoms are deterministic and carry their domain, units and spacing."""

import numpy as np
import pytest

from sciSR.data.phantoms import PHANTOMS, generate
from sciSR.errors import SciSRError


@pytest.mark.parametrize("name", sorted(PHANTOMS))
def test_same_seed_same_image_other_seed_other_image(name):
    a, b, c = generate(name, 1).array, generate(name, 1).array, generate(name, 2).array
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and np.isfinite(a).all()


def test_domains_and_units():
    knee = generate("knee_phantom", 0, shape=(32, 32, 24))
    assert knee.domain == "mri" and knee.array.shape == (32, 32, 24) and knee.spacing == (0.5, 0.5, 0.5)
    ct = generate("ct_phantom", 0)
    assert ct.domain == "ct" and ct.meta["units"] == "HU"
    assert ct.array.min() < -900 and ct.array.max() > 600  # air and bone in HU
    sky = generate("star_field", 0)
    assert sky.domain == "sky" and sky.meta["units"] == "counts"
    assert np.median(sky.array) == pytest.approx(100.0, rel=0.05)  # the sky level
    assert generate("generic_scene", 0).domain == "generic"


def test_unknown_phantom_or_option():
    with pytest.raises(SciSRError, match="unknown phantom"):
        generate("brain", 0)
    with pytest.raises(SciSRError, match="unknown option 'size'"):
        generate("ct_phantom", 0, size=3)
    for bad in (dict(noise=-1.0), dict(grain=(2.0, 1.0)), dict(noise=(1.0, 2.0, 3.0)), dict(noise=float("nan")),
                dict(blur=-0.5)):
        with pytest.raises(SciSRError, match=r"ct_phantom (noise|grain|blur) must be"):
            generate("ct_phantom", 0, **bad)


def test_ct_phantom_noise_and_grain():
    from sciSR.consistency import estimate_noise_sigma

    def air(image):  # the corner outside the body: −1000 HU plus the noise alone
        return image.array[:12, :12]

    assert np.std(air(generate("ct_phantom", 0))) == pytest.approx(6.0, rel=0.2)  # the default, white
    white = generate("ct_phantom", 0, noise=30.0)
    grainy = generate("ct_phantom", 0, noise=30.0, grain=1.0)
    assert np.std(air(white)) == pytest.approx(30.0, rel=0.2) and np.std(air(grainy)) == pytest.approx(30.0, rel=0.3)
    # Correlated noise has little power at the highest frequencies, which a white-noise estimate reads.
    assert estimate_noise_sigma(grainy.array, 2) < 0.5 * estimate_noise_sigma(white.array, 2)
    # A softer reconstruction kernel: wider edges (the 10–90 % rise across the chest wall).
    sharp, soft = (generate("ct_phantom", 0, noise=0.0, blur=b).array[80, :40] for b in (0.5, 1.1))
    assert np.sum(np.diff(sharp) > 50) < np.sum(np.diff(soft) > 50)
    drawn = [np.std(air(generate("ct_phantom", seed, noise=(10.0, 40.0)))) for seed in range(4)]
    assert min(drawn) >= 7.0 and max(drawn) <= 48.0 and max(drawn) - min(drawn) > 3.0


def test_star_fields_can_be_crowded_nebulous_and_saturated():
    plain = generate("star_field", 4, gain=1e6, read_noise=0.0).array
    # Defaults draw nothing new: a seed still gives the frame it always gave.
    assert np.array_equal(plain, generate("star_field", 4, gain=1e6, read_noise=0.0, nebula=0.0).array)
    level = float(np.percentile(plain, 99.5))
    clipped = generate("star_field", 4, gain=1e6, read_noise=0.0, saturation=level).array
    assert clipped.max() == pytest.approx(level) and np.array_equal(clipped, np.minimum(plain, level))
    soft = generate("star_field", 4, gain=1e6, read_noise=0.0, saturation=level, soft_saturation=1.0).array
    assert np.allclose(soft, level * np.tanh(plain.astype(np.float64) / level), rtol=1e-5)
    assert soft.max() < level
    ranges = {"n_stars": [100, 2000], "nebula": [20.0, 60.0], "saturation": [500.0, 5000.0]}
    drawn = [generate("star_field", seed, gain=1e6, read_noise=0.0, **ranges).array for seed in range(3)]
    assert all(300.0 <= d.max() <= 5000.0 + 1e-3 for d in drawn)
    assert len({float(d.max()) for d in drawn}) == 3  # one level per image
    # Structured background: the sky's median absolute deviation grows far beyond the flat sky's.
    mad = [float(np.median(np.abs(d - np.median(d)))) for d in (plain, drawn[0])]
    assert mad[1] > 5 * max(mad[0], 1e-3)
