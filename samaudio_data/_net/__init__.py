"""HTTP and the asynchronous queue: how one request reaches the endpoint and its answer comes back.

``transport`` owns the HTTP session, confines the key to the endpoint's origin and turns
failures into typed errors; ``wire`` is the gate each request passes as its headers are
written; ``queue`` submits, polls and fetches (or makes the synchronous call); ``journal``
keeps queued requests already paid for until their answer is cached; ``responses`` finds
the audio in an answer whatever its shape; ``retry`` says what is retried after how long.
"""
