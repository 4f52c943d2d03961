"""State shared across threads and processes: the account's pace, concurrency, back-off, halt
and budget (``limits``), the small JSON document they live in (``statefile``), and the
portable file locks and atomic writes under both (``files``).
"""
