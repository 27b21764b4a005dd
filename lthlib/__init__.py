"""lthlib: the lottery ticket hypothesis as a DVC pipeline.

The package is layered; imports run downward only:
    report/     figures and markdown reports, from saved tables
    analyses/   lmc, landscape, instability, el2n, subsets: measurements on IMP's outputs
    core/       config, io, data, models, pruning, train, interpolate, pruning_schedule, imp
`lthlib.cli` holds what the stage scripts in stages/ share. Package __init__ files hold no code,
so the dependency lists derived from imports (lthlib.core.dependencies) can leave them out.
"""
