# multiprocessing documentation, "Process and exceptions": the interactive session about a
# process's state and exit code, as a script.
import shmproc as multiprocessing, time, signal

if __name__ == '__main__':
    mp_context = multiprocessing.get_context('spawn')
    p = mp_context.Process(target=time.sleep, args=(1000,))
    print(p, p.is_alive())
    p.start()
    print(p, p.is_alive())
    p.terminate()
    time.sleep(0.1)
    print(p, p.is_alive())
    print(p.exitcode == -signal.SIGTERM)
