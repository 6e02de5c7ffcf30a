"""handler/tiled.py's lattice: found from the centres of a tiled mark's copies, with the
centres of shapes off it left out, and the places it predicts over an image."""

from __future__ import annotations

import numpy as np

from handler.tiled import fit_lattice, lattice_places


def rotated_lattice(angle: float, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(centres (rows * cols, 2), basis (2, 2)): copies 61 apart in a row, rows 37 apart and
    staggered by 23, the whole turned by ``angle`` degrees, as training/synth.py tiles a grid."""
    turn = np.deg2rad(angle)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    basis = np.array([[0.0, 61.0], [37.0, 23.0]]) @ rotation.T
    index = np.stack(np.meshgrid(range(rows), range(cols), indexing="ij"), -1).reshape(-1, 2)
    return 100 + index @ basis[::-1], basis


def test_the_lattice_of_jittered_copies_is_recovered_and_stray_shapes_are_left_off():
    rng = np.random.default_rng(0)
    centres, basis = rotated_lattice(25.0, 4, 5)
    centres = centres + rng.uniform(-1, 1, centres.shape)  # box centres are a pixel off
    strays = np.array([[140.0, 171.0], [260.0, 95.0]])  # alike shapes between the copies
    fitted = fit_lattice(np.concatenate([centres, strays]))
    assert fitted is not None
    _origin, found, on = fitted
    assert sorted(on) == list(range(len(centres)))
    # The fitted steps span the true lattice: each true step is a whole combination of them.
    for step in basis:
        index = np.linalg.lstsq(found.T, step, rcond=None)[0]
        assert np.allclose(index, np.rint(index), atol=0.05)
        assert np.linalg.norm(np.rint(index) @ found - step) < 0.5


def test_scattered_centres_have_no_lattice():
    rng = np.random.default_rng(1)
    assert fit_lattice(rng.uniform(0, 400, (12, 2))) is None


def test_the_places_cover_the_image_and_the_copies_its_edges_cut():
    origin, basis = np.array([10.0, 10.0]), np.array([[0.0, 50.0], [40.0, 20.0]])
    places = lattice_places(origin, basis, (200, 300))
    inside = places[(places[:, 0] >= 0) & (places[:, 0] < 200)]
    inside = inside[(inside[:, 1] >= 0) & (inside[:, 1] < 300)]
    # 200 x 300 pixels at one place per 50 x 40: 30 places, give or take the edges.
    assert 25 <= len(inside) <= 35
    assert ((places[:, 0] < 0) | (places[:, 1] < 0)).any()  # one step beyond the edges too
    # Each place is a whole step combination from the origin.
    index = np.linalg.lstsq(basis.T, (places - origin).T, rcond=None)[0]
    assert np.allclose(index, np.rint(index))
