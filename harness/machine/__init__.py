"""Facts about where a run executes: the host, its cores, XLA's flags, the processes of one data-parallel run."""
