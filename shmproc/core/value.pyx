# value: shared Value/Array state with C-level .value access and lock-free atomics (sharedctypes).
