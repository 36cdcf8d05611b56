"""Ultra-Fast-Lane-Detection on TuSimple pruned with SLR and ADMM (the paper's Table 4).

Modules: ``lane_eval`` (the official TuSimple metric), ``labels`` and ``dataset`` (TuSimple json
lines to row-anchor targets), ``augment`` (UFLD's rotation and shift of frame and lanes),
``model`` and ``losses`` (UFLD), ``decode`` (outputs to lanes),
``synthetic`` (TuSimple-format frames for the smoke profile), ``task`` (the pipeline's task), the entry point in ``__main__``.
"""
