"""The paper's Tables 1-2, Figure 1 and claim verdicts, rebuilt from the logged runs.

runs.py exports the runs from MLflow to results/runs-<scale>.csv; everything else reads
only that CSV (and results/flops.csv), so the committed tables regenerate offline.
"""
