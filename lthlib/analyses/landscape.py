"""Two-dimensional slices of the error landscape of an IMP step (Paul et al. 2022, Fig. 3, 7, 8).

The plane of level L passes through the level-L solution w(L), its projection
m(L+1) * w(L) onto the next axial subspace, and the level-(L+1) solution w(L+1). The error
is evaluated on an N x N grid of that plane (Appendix C: 51 x 51), with the hull rule of
`lthlib.core.interpolate` for points outside the triangle of the three networks.
"""

from __future__ import annotations

import torch
from torch import nn

from lthlib.core.config import InterpolationConfig, LandscapeConfig
from lthlib.core.data import Dataset
from lthlib.core.interpolate import (barycentric, closest_in_triangle, evaluate_combinations, plane_coordinates,
                                plane_grid)
from lthlib.core.models import prunable_names
from lthlib.core.pruning import projection


def level_slice(model: nn.Module, solution: dict, next_solution: dict, next_mask: dict, dataset: Dataset,
                landscape: LandscapeConfig, evaluation: InterpolationConfig,
                description: str = "landscape") -> dict[str, torch.Tensor]:
    """The error grid of one IMP step, with everything needed to redraw its figure.

    Keys: x [N], y [N] (scaled coordinates: projection at (1, 0), w(L+1) at height 1),
    error [N, N] (rows follow y), points [3, 2] (scaled coordinates of w(L), projection,
    w(L+1)), point_error [3], inside [N, N] (grid point in the triangle), unit [2] (true
    length of one scaled unit along each axis).
    """
    networks = [solution, projection(solution, next_mask), next_solution]
    parameter_names = [name for name, _ in model.named_parameters()]
    triangle = plane_coordinates(*networks, parameter_names)
    xs, ys, points = plane_grid(triangle, landscape.grid_size, landscape.margin, landscape.orthogonal_scale)
    coefficients = barycentric(points, triangle)
    prunable = prunable_names(model)
    # Appendix C: outside the hull only prunable weights extrapolate; the rest sit on the hull boundary
    errors = evaluate_combinations(model, networks, torch.cat([torch.eye(3, dtype=torch.float64), coefficients]),
                                   prunable, dataset, evaluation,
                                   torch.cat([torch.eye(3, dtype=torch.float64),
                                              closest_in_triangle(points, triangle)]), description)
    unit = torch.stack([triangle[1, 0], triangle[2, 1]])
    size = landscape.grid_size
    return {"x": xs, "y": ys, "error": errors[3:].view(size, size), "points": triangle / unit,
            "point_error": errors[:3], "inside": (coefficients >= 0).all(1).view(size, size), "unit": unit}


def slice_summary(level: int, grid: dict[str, torch.Tensor]) -> dict:
    """One row of reports/landscape.csv: the three networks' errors and where they sit in the plane."""
    return {"level": level, "error_solution": float(grid["point_error"][0]),
            "error_projection": float(grid["point_error"][1]), "error_next": float(grid["point_error"][2]),
            "projection_distance": float(grid["unit"][0]), "next_orthogonal_distance": float(grid["unit"][1]),
            "next_x": float(grid["points"][2, 0]), "grid_min_error": float(grid["error"].min()),
            "grid_max_error": float(grid["error"].max())}
