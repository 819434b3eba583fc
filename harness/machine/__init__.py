"""Facts about where a run executes: the host, its cores, its disk (durable writes), XLA's flags,
and the processes of one data-parallel run."""
