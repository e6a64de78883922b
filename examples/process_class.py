# multiprocessing documentation, "The Process class": spawn a process by creating a Process object.
from shmproc import Process

def f(name):
    print('hello', name)

if __name__ == '__main__':
    p = Process(target=f, args=('bob',))
    p.start()
    p.join()
