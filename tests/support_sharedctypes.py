"""Module-level child targets for the sharedctypes and ndarray tests (spawned children import them),
and the parent's way of running them."""
import numpy as np

JOIN = 60  # seconds: a generous bound on any child that should finish (spawn on a busy machine)


def run(ctx, target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


def finish(*processes):
    """Join the children; a child that hangs is killed and fails the test, as does a failed one."""
    for p in processes:
        p.join(JOIN)
        if p.is_alive():
            p.kill()
            p.join()
            raise AssertionError(f"child {p.pid} did not finish within {JOIN}s")
        assert p.exitcode == 0, f"child {p.pid} exited with {p.exitcode}"


def set_value(value, new):
    value.value = new


def set_items(array, pairs):
    for index, item in pairs:
        array[index] = item


def fill_through_numpy(array, fill):
    np.asarray(array)[:] = fill


def add_to_value_atomically(value, times):
    for _ in range(times):
        value.fetch_add(1)


def add_to_value_under_lock(value, times):
    for _ in range(times):
        with value.get_lock():
            value.value += 1


def atomics_sequence(value, results):
    """Store, swap and add in the child; report what each call returned through a shared array."""
    value.store(10)
    results[0] = value.compare_exchange(10, 20)
    results[1] = value.compare_exchange(10, 30)
    results[2] = value.fetch_add(5)
    results[3] = value.load()


def set_structure_fields(point, x, y):
    point.x = x
    point.y = y


def write_into_array(array, index, item):
    array[index] = item


def report_array(array, conn):
    """Send back what the child received: its type, whether it is writable, its first element."""
    conn.send((type(array).__name__, array.flags.writeable, array.shape, array.dtype.str,
               array.reshape(-1)[:1].tolist()))


def receive_arrays_and_write(conn, count):
    """Receive numeric arrays over a pipe; write 1 + the array's number into its first element and
    acknowledge with the received type's name."""
    for i in range(count):
        array = conn.recv()
        array[(0,) * array.ndim] = i + 1
        conn.send(type(array).__name__)
