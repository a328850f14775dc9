import dataclasses
import math

import pytest

from scaleplan.core.parameters import (
    Parameter,
    Parameters,
    chinchilla_parameters,
    downstream_parameters,
    overtrain_parameters,
)


def test_parameter_is_frozen_and_validated():
    p = Parameter("alpha", 0.3, min=0.0, max=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.value = 0.5
    with pytest.raises(ValueError, match="outside bounds"):
        Parameter("alpha", 3.0, min=0.0, max=2.0)
    with pytest.raises(ValueError, match="finite"):
        Parameter("E", math.nan)
    with pytest.raises(ValueError, match="bounds"):
        Parameter("E", 1.0, min=2.0, max=0.0)
    with pytest.raises(ValueError, match="itself"):
        Parameter("E", 1.0, tie="E")


def test_parameters_is_an_ordered_immutable_mapping():
    params = chinchilla_parameters()
    assert list(params) == ["E", "A", "B", "alpha", "beta"]
    assert len(params) == 5 and "alpha" in params
    assert params["A"].value == 406.4
    with pytest.raises(AttributeError):
        params.foo = 1
    assert params == chinchilla_parameters()
    assert hash(params) == hash(chinchilla_parameters())


def test_fix_returns_a_new_object_and_leaves_the_original():
    params = chinchilla_parameters()
    fixed = params.fix("alpha", 0.3)
    assert fixed["alpha"].value == 0.3 and not fixed["alpha"].vary
    assert params["alpha"].vary and params["alpha"].value == 0.34
    assert fixed.free_names == ("E", "A", "B", "beta")
    assert fixed.fixed_names == ("alpha",)
    assert fixed.fix("E").fixed_names == ("E", "alpha")


def test_borrow_fixes_values_from_another_fit():
    other = {"E": 1.8, "A": 500.0, "B": 300.0, "alpha": 0.3, "beta": 0.25}
    params = chinchilla_parameters().borrow(other, ["A", "alpha"])
    assert params.fixed_names == ("A", "alpha")
    assert params.values_dict()["A"] == 500.0 and params.values_dict()["alpha"] == 0.3
    assert params.values_dict()["B"] == 410.7


def test_borrowing_a_value_outside_the_bounds_is_refused():
    with pytest.raises(ValueError, match="outside bounds"):
        chinchilla_parameters().fix("alpha", 2.5)


def test_tie_and_free():
    params = chinchilla_parameters().tie("beta", "alpha")
    assert params.tied == {"beta": "alpha"}
    assert params.free_names == ("E", "A", "B", "alpha")
    assert params.values_dict()["beta"] == params["alpha"].value
    assert params.free("beta").free_names == ("E", "A", "B", "alpha", "beta")


def test_invalid_collections_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        Parameters([Parameter("E", 1.0), Parameter("E", 2.0)])
    with pytest.raises(ValueError, match="unknown"):
        Parameters([Parameter("E", 1.0, tie="F")])
    with pytest.raises(ValueError, match="itself tied"):
        Parameters([Parameter("a", 1.0), Parameter("b", 1.0, tie="a"), Parameter("c", 1.0, tie="b")])
    with pytest.raises(KeyError, match="no parameter"):
        chinchilla_parameters().fix("gamma", 1.0)


def test_defaults_have_documented_bounds():
    c = chinchilla_parameters()
    for name in ("alpha", "beta"):
        assert 0 < c[name].min < 1e-3 and c[name].max == 2.0
    for name in ("E", "A", "B"):
        assert c[name].min == 0.0 and c[name].value > 0
    assert list(overtrain_parameters()) == ["E", "a", "b", "eta"]
    assert overtrain_parameters()["eta"].max == 1.0
    assert list(downstream_parameters()) == ["eps", "k", "gamma"]
    assert downstream_parameters()["eps"].max == 1.0


def test_with_values_updates_starting_points_only():
    params = chinchilla_parameters().fix("alpha").with_values({"E": 2.0})
    assert params["E"].value == 2.0 and params["E"].vary
    assert params.fixed_names == ("alpha",)
