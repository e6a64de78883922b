# lifetime: the one process-control call the core offers, so that a freshly spawned child can arm its
# parent-death signal without importing ctypes (a few milliseconds of every spawn).

def set_parent_death_signal(int signum):
    """prctl(PR_SET_PDEATHSIG, signum): 0 on success, -1 on failure; never raises."""
    return prctl(PR_SET_PDEATHSIG, <unsigned long>signum, 0, 0, 0)
