"""The fitter's parts behind :mod:`core.fitting` (its interface): one module per job.

``errors`` (what a failed fit raises), ``results`` (:class:`FitResult`, :class:`BootstrapResult`),
``objective`` (the objective and its gradient on one data set, in optimiser coordinates),
``starts`` (grids of starts and the variable-projection scan), ``optimiser`` (the L-BFGS-B
descents) and ``bootstrap`` (refits on resampled runs), like SciPy's ``optimize._lsq``.
"""
