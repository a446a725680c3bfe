"""Doctests of the package run in the suite with torch, numpy, nn and xarray at hand."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict) -> None:
    doctest_namespace.update(torch=torch, np=np, nn=nn, xr=xr)
