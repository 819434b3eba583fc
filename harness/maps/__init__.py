"""Supplementary Figure 2: where the first TokenLearner module's maps look, measured from
finished runs."""
