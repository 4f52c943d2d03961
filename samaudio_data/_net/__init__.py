"""HTTP and the asynchronous queue: how one request reaches the endpoint and its answer comes back.

``urls`` judges where a URL goes as urllib3 will connect (refusing anything ambiguous);
``transport`` owns the HTTP session, confines the key to the endpoint's origin and turns
failures into typed errors; ``wire`` is the gate each request passes as its headers are
written; ``queue`` submits, polls (when: ``polls``, dense around the completion time
learned) and fetches (or makes the synchronous call);
``tickets`` and ``journal`` keep queued requests already paid for until their answer is
cached; ``responses`` finds the audio in an answer whatever its shape; ``retry`` says what
is retried after how long.
"""
