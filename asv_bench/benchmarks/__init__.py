"""shmproc's asv benchmarks: one module per shmproc module measured, plus PEP 371's tables."""
