"""Scoring models on held-out data: accuracy, keypoint errors, intervals and plots
(plots need matplotlib)."""
