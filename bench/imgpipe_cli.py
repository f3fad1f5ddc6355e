"""`imgpipe` for the benchmarks: the CLI, its CPU time all countable by the caller.

A build renders in worker processes started by multiprocessing's fork server
(imgpipe/executor.py). The fork server reaps the workers, but nothing waits for the fork server
itself when the CLI exits, so a caller's RUSAGE_CHILDREN would miss all their CPU time. Here
the CLI stops it on exit (a private multiprocessing function, the one its own tests use).
"""

import atexit
from multiprocessing import forkserver

from imgpipe.cli import main

if __name__ == "__main__":  # the build's worker processes import this script again
    atexit.register(forkserver._forkserver._stop)
    main()
