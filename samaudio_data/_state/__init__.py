"""State shared across threads, processes and machines: the rules of an account's pace,
concurrency, back-off, halt and budget (``rules``), applied by the sender's side
(``limits``) to a swappable state: the small JSON document of one machine (``statefile``)
or, across a cluster, a Ray actor (``samaudio_data.ray``); what that shared record may hold,
checked on every read (``limitstate``); and the portable file locks and atomic writes under
them (``files``).
"""
