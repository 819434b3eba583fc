"""The paper's Tables 1-2, Figures 1-2, the learning curves and the claims' verdicts, rebuilt
from the run export (results/runs-<scale>.csv, written by harness/store/export.py) and
results/flops.csv alone, so that the committed tables regenerate offline."""
