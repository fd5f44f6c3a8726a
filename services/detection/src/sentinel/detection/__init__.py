"""The detection service: causal streaming anomaly scoring, micro-batched into NumPy kernels."""
