"""The TA-CL study behind benchmarks/train_compare.py, one idea per module: `arms` (the variants and the model each
starts from), `reuse` (scores stored under the fingerprints of the task paths they read), `runner` (train, save,
evaluate; the base), `wise` (post-hoc WiSE-FT and WAVE, alphas chosen on dev splits) and `report` (tables, gains
with intervals, targets)."""
