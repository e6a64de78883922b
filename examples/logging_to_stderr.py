# multiprocessing documentation, "Logging": log_to_stderr(), as a script.
import shmproc as multiprocessing, logging

if __name__ == '__main__':
    logger = multiprocessing.log_to_stderr()
    logger.setLevel(logging.INFO)
    logger.warning('doomed')
    m = multiprocessing.Manager()
    del m
