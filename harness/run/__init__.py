"""Training: one run end to end, the sweep over the experiment matrix, and the budget study."""
