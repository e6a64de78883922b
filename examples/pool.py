# multiprocessing documentation, "Introduction": a Pool mapping a function over its inputs.
from shmproc import Pool

def f(x):
    return x*x

if __name__ == '__main__':
    with Pool(5) as p:
        print(p.map(f, [1, 2, 3]))
