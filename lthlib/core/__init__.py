"""The core: typed params, the on-disk format, datasets, models, masks, the trainer, batched
evaluation of interpolated networks, pruning-ratio rules and IMP itself."""
