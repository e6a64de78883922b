# ring: the variable-length message ring under Queue and Pipe (queues issue).
