"""How long `import shmproc` takes in a fresh interpreter, beside `import multiprocessing` (which
imports its synchronize module lazily, so a second row makes the first lock in each)."""


class Import:
    params = [["shmproc", "multiprocessing"]]
    param_names = ["library"]

    def timeraw_import(self, library):
        return f"import {library}"

    def timeraw_import_and_make_a_lock(self, library):
        return f"import {library}; {library}.Lock()"
