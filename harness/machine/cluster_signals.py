"""The signals with which a cluster tells a job to stop: SIGTERM when SLURM preempts it, and
the one it asks for with --signal before its time limit (submitit's SIGUSR2; SIGUSR1 is the
other common choice). A training run checkpoints on them (harness/run/preemption.py); its data
workers ignore them and stop when it does."""
import signal

PREEMPTION = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
