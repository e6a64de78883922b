# codec's interface: an object encoded as a ring record (filled by encode_object/encode_raw).

ctypedef struct encoded_t:
    uint32_t kind          # SHM_RECORD_*: what the payload is
    uint64_t length        # payload bytes
    const char *data       # INT, FLOAT: &scalar; BUFFERS: unused; others: the bytes to copy
    uint64_t scalar        # INT and FLOAT payloads, bit for bit
    Py_ssize_t nbuffers    # BUFFERS: how many out-of-band buffers follow the stream
    shm_spill_ref_t spill  # SPILL: the reference that data points at
