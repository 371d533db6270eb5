"""The curated ``__all__`` of each public package is exactly what it provides, resolves, and is listed by dir()."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PACKAGES = ["slicewise", "slicewise.metrics", "slicewise.query", "slicewise.slices", "slicewise.io", "slicewise.embeddings"]
#: names a module holds for its own annotations, not API
NOT_API = {"annotations", "TYPE_CHECKING", "Any"}


def _provided(mod: ModuleType) -> set[str]:
    """The public names a module provides: its public globals and what its ``__getattr__`` resolves
    lazily (as ``dir()`` lists them), less its submodules and annotation helpers."""
    names = set()
    for name in dir(mod):
        if name.startswith("_") or name in NOT_API:
            continue
        if isinstance(getattr(mod, name), ModuleType):  # a submodule, once imported
            continue
        names.add(name)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_what_the_package_provides(package):
    mod = importlib.import_module(package)
    public = set(mod.__all__) - {"__version__"}
    assert len(mod.__all__) == len(set(mod.__all__)), "a name is listed twice"
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name  # resolves (lazily exported names load here)
    assert set(mod.__all__) <= set(dir(mod))
    assert _provided(mod) == public


def test_lazy_exports_are_the_objects_of_their_modules():
    import slicewise
    from slicewise import metrics
    from slicewise.metrics import results, views

    assert slicewise.StaleMetricsWarning is metrics.StaleMetricsWarning is results.StaleMetricsWarning
    assert issubclass(metrics.StaleMetricsWarning, UserWarning)
    assert metrics.feature_metrics is views.feature_metrics
