"""The one compiled module, ``segue._kernels`` (see its source); everything else is in
pyproject.toml. Building it needs a C compiler and Python's headers."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("segue._kernels", ["src/segue/_kernels.c"])])
