"""`nox -s bench`: how fast each twin trains each proxy row, against this machine's roof.

Every number comes from a fresh process per measurement (harness/bench/probe.py),
run one after another in one sweep, so that the two frameworks are measured side
by side under the same conditions; JAX reads its thread settings when it starts,
which is the other reason for a process each. GFLOP/s count a multiply-add as two
FLOPs, as a matmul peak does, and a training step as three forward passes.
"""
