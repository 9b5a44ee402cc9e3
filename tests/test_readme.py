"""The README's Python example runs as written."""

import doctest
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_example():
    failed, attempted = doctest.testfile(str(README), module_relative=False,
                                         optionflags=doctest.ELLIPSIS)
    assert attempted > 10 and failed == 0
