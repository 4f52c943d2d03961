"""The answer pipeline: a clip turned into requests and the answers back into a clip
(``jobs``), each request's answer through the cache, retries, validation and accounting
(``calls``), and the verified on-disk cache of answers (``cache``).
"""
