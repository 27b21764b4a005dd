"""Measurements on IMP's outputs: linear mode connectivity, landscapes, instability, EL2N, subsets."""
