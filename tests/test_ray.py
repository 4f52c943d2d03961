"""samaudio_data.ray on a real local Ray cluster of two nodes, against the local endpoint in a
process of its own (a token bucket of burst 1: any two requests closer than the stated
interval get a 429) and a real S3 server (moto's, on 127.0.0.1).

One cluster for the module (~5 s to start, ~1.2 GB; two logical CPUs per node, so that a
reading task of one CPU still fits beside an actor reserving 0.01): the key and the S3
settings reach its workers only through their environment, as on a real cluster.
"""

from __future__ import annotations

import os
import pathlib
import threading
import time
import uuid

import numpy as np
import pytest

ray = pytest.importorskip(
    "ray", reason="the Ray extra (pip install samaudio-data[ray]) is not installed here"
)
pytest.importorskip("ray.data", reason="ray[data] is not installed here")
pytest.importorskip("s3fs", reason="the Ray extra's s3fs is not installed here")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed here")

from datasets import Audio, Dataset  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from samaudio_data import Client, errors  # noqa: E402
from samaudio_data._state.rules import Rules  # noqa: E402
from samaudio_data.audio import encode_wav  # noqa: E402
from samaudio_data.ray import Coordinator, IsolateBatches, isolate  # noqa: E402
from samaudio_data.testing import EndpointProcess  # noqa: E402

KEY = f"sk-raytest-{uuid.uuid4().hex}"  # found nowhere Ray writes, or the test fails
WINDOW = 2.0
PER_WINDOW = 4  # 2 requests/s, burst 1: a 20 ms margin (a loaded 2-core CI box jitters)
LATENCY = 0.3
PRICE = 0.062
SR = 16000

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on 127.0.0.1, and a bucket."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    server.stop()


@pytest.fixture(scope="module")
def cluster(s3, tmp_path_factory):
    """A head and a worker node; their processes inherit this environment (the key)."""
    saved = dict(os.environ)
    os.environ.update(
        s3,
        SEGMIND_API_KEY=KEY,
        RAY_DATA_DISABLE_PROGRESS_BARS="1",
        SAMAUDIO_CACHE_DIR=str(tmp_path_factory.mktemp("local-cache")),
    )
    node = {"num_cpus": 2, "object_store_memory": 100 * 2**20}
    # a lost node is noticed within ~1.5 s (not the default ~15 s)
    fast = {
        "health_check_period_ms": 500,
        "health_check_failure_threshold": 3,
        "health_check_initial_delay_ms": 500,
    }
    c = Cluster(
        initialize_head=True,
        head_node_args=dict(node, include_dashboard=False, _system_config=fast),
    )
    c.add_node(**node)
    ray.init(address=c.address, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield c
    ray.shutdown()
    c.shutdown()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def server(cluster):
    with EndpointProcess(
        keys={KEY: None},
        rate_limit_per_minute=PER_WINDOW,
        rate_window=WINDOW,
        rate_limit_burst=1,
        latency=LATENCY,
        send_retry_after="fraction",
    ) as ep:
        yield ep


def clips(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return [(0.2 * rng.standard_normal(SR // 4)).astype(np.float32) for _ in range(n)]


LABELS = ("dog", "cat", "bird")


def hf_rows(n: int, seed: int):
    """A Ray Dataset as ray.data.from_huggingface gives it: {"bytes", "path"} structs, and
    a label per row."""
    hf = Dataset.from_dict(
        {
            "audio": [
                {"bytes": encode_wav(y, SR), "path": f"{i}.wav"}
                for i, y in enumerate(clips(n, seed))
            ],
            "row": list(range(n)),
            "label": [LABELS[i % 3] for i in range(n)],
        }
    ).cast_column("audio", Audio(decode=False))
    return ray.data.from_huggingface(hf, override_num_blocks=4)


def client(server, cache, **kw):
    return Client(
        endpoint=server.url,
        requests_per_minute=PER_WINDOW,
        rate_window=WINDOW,
        cache_dir=cache,
        progress=False,
        backoff_base=0.05,
        **kw,
    )


def delta(server, before):
    after = server.stats
    return {
        "requests": after["requests"] - before["requests"],
        "billed": after["billed"] - before["billed"],
        "429": after["by_status"].get(429, 0) - before["by_status"].get(429, 0),
        "406": after["by_status"].get(406, 0) - before["by_status"].get(406, 0),
    }


def test_the_stated_rate_holds_across_nodes_and_every_row_is_paid_once(server, tmp_path):
    before = server.stats
    c = client(server, tmp_path / "shared-cache")
    coord = Coordinator(f"t-{uuid.uuid4().hex[:8]}", lease_ttl=5)
    ds = hf_rows(12, 1)
    # a template naming a column the dataset lacks: refused at once (the schema is known)
    with pytest.raises(errors.InvalidRequestError, match="'lable', which the dataset does not"):
        isolate(ds, "half the {lable}", client=c, coordinator=coord)
    t0 = time.monotonic()
    # each row's own description, filled from its label
    rows = isolate(
        ds, "half the {label}", client=c, coordinator=coord, batch_size=4, concurrency=2
    ).take_all()
    took = time.monotonic() - t0
    assert len(rows) == 12 and all(r["isolated_error"] == "" for r in rows)
    assert all(abs(r["isolated_target_db"] + 6.02) < 0.5 for r in rows), [
        r["isolated_target_db"] for r in rows
    ]  # "half": -6 dB
    assert sorted(r["row"] for r in rows) == list(range(12))
    assert all(r["isolated_description"] == f"half the {r['label']}" for r in rows)
    sent = server.stats["descriptions"][len(before["descriptions"]) :]
    assert sorted(sent) == sorted(f"half the {LABELS[i % 3]}" for i in range(12))
    d = delta(server, before)
    assert d == {"requests": 12, "billed": 12, "429": 0, "406": 0}
    # the pace was the account's, not each node's
    assert took > (12 - 1) / (PER_WINDOW / WINDOW)


def test_read_audio_rows_and_an_s3_cache_shared_by_the_nodes(server, tmp_path):
    import s3fs
    import soundfile as sf

    fs = s3fs.S3FileSystem()
    bucket = f"cache-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    folder = tmp_path / "wavs"
    folder.mkdir()
    for i, y in enumerate(clips(6, 2)):
        sf.write(folder / f"{i}.wav", y, SR, subtype="PCM_16")
    coord = Coordinator(f"t-{uuid.uuid4().hex[:8]}")
    c = client(server, f"s3://{bucket}/samaudio", coordinator=coord)
    coord.actor()

    # read_audio's columns are known only once a file is read: a template naming a column
    # it lacks is refused by the worker, before any request, as the library's own error
    before = server.stats
    lazy = isolate(ray.data.read_audio(str(folder)), "{label}", client=c, concurrency=1)
    with pytest.raises(errors.InvalidRequestError, match="'label', which the dataset") as err:
        lazy.take_all()
    assert "amplitude" in err.value.message and "Nothing was sent" in err.value.message
    assert delta(server, before)["requests"] == 0

    class WhereIsolated(IsolateBatches):
        """The public class in a user's own map_batches, noting each row's node."""

        def __call__(self, batch):
            out = super().__call__(batch)
            out["node"] = np.array(
                [ray.get_runtime_context().get_node_id()] * len(out["isolated_error"])
            )
            return out

    def run():
        ds = ray.data.read_audio(str(folder), override_num_blocks=6)
        return ds.map_batches(
            WhereIsolated,
            batch_format="numpy",
            batch_size=1,
            fn_constructor_kwargs={"description": "speech", "client": c, "keep": "both"},
            compute=ray.data.ActorPoolStrategy(size=2),
            num_cpus=0.01,
        ).take_all()

    before = server.stats
    rows = run()
    assert len(rows) == 6 and all(r["isolated_error"] == "" for r in rows)
    assert {"isolated", "isolated_residual", "amplitude", "sample_rate"} <= set(rows[0])
    assert len({r["node"] for r in rows}) == 2  # both nodes sent requests
    d = delta(server, before)
    assert d["billed"] == 6 and d["429"] == 0
    assert len(fs.glob(f"{bucket}/samaudio/results/*/*.bin")) == 6
    # every node reads the answers back from S3 (verified), paying nothing
    before = server.stats
    again = run()
    assert all(r["isolated_cached"] for r in again) and delta(server, before)["billed"] == 0


def test_the_budget_and_the_halt_hold_across_nodes(server, tmp_path):
    c = client(server, tmp_path / "cache")
    before = server.stats
    with pytest.raises(errors.BudgetExceededError, match="max_cost"):
        isolate(
            hf_rows(10, 3),
            "speech",
            client=c,
            max_cost=5 * PRICE,
            batch_size=2,
            concurrency=2,
            coordinator=Coordinator(f"t-{uuid.uuid4().hex[:8]}"),
        ).take_all()
    assert delta(server, before)["billed"] == 5
    # out of credits after 3 paid calls: a 406 on one node stops the other too
    server.set_credits(KEY, 3 * PRICE + 0.001)
    try:
        before = server.stats
        with pytest.raises(errors.InsufficientCreditsError):
            isolate(
                hf_rows(10, 4),
                "speech",
                client=c,
                batch_size=2,
                concurrency=2,
                coordinator=Coordinator(f"t-{uuid.uuid4().hex[:8]}"),
            ).take_all()
        d = delta(server, before)
        assert d["billed"] == 3 and 1 <= d["406"] <= 3
    finally:
        server.set_credits(KEY, None)


def test_stems_and_row_functions_read_plain_values_from_a_numpy_batch(monkeypatch):
    """No cluster needed: the class a worker runs, on a batch as Ray Data hands it."""
    from samaudio_data.testing import LocalEndpoint

    seen = []

    def voice(row):
        seen.append(row["label"])
        return f"half the {row['label']}"

    with LocalEndpoint() as ep:
        fn = IsolateBatches(
            {"voice": voice, "bass": "bass of the {label}"},
            client=Client("local-key", endpoint=ep.url, cache_dir=False, progress=False),
        )
        audio = np.empty(2, dtype=object)
        audio[:] = [
            {"bytes": encode_wav(y, SR), "path": f"{i}.wav"} for i, y in enumerate(clips(2, 9))
        ]
        out = fn({"audio": audio, "label": np.array(["dog", "cat"])})
        sent = ep.stats["descriptions"]
        monkeypatch.delenv("SEGMIND_API_KEY", raising=False)  # a worker without the key
        keyless = IsolateBatches("speech", client=Client(endpoint=ep.url, cache_dir=False))
        with pytest.raises(errors.AuthenticationError, match="no API key in this Ray worker"):
            keyless({"audio": audio})
        assert ep.stats["requests"] == 4
    assert seen == ["dog", "cat"] and all(type(v) is str for v in seen)  # not numpy.str_
    assert list(out["voice_description"]) == ["half the dog", "half the cat"]
    assert list(out["bass_description"]) == ["bass of the dog", "bass of the cat"]
    assert sorted(sent) == sorted([*out["voice_description"], *out["bass_description"]])
    assert list(out["voice_error"]) == ["", ""] and list(out["label"]) == ["dog", "cat"]


def test_a_dead_lease_holder_never_blocks_the_others(cluster):
    coord = Coordinator(f"t-{uuid.uuid4().hex[:8]}", lease_ttl=1)
    rules = Rules(max_concurrency=1, requests_per_minute=600)
    account = "lease-test"

    @ray.remote(num_cpus=0)
    class Holder:
        def hold(self):
            self.cm = coord.state(account, rules).slot(rules)
            self.cm.__enter__()
            return "held"

    holder = Holder.remote()
    assert ray.get(holder.hold.remote()) == "held"
    ray.kill(holder)  # it dies holding the only slot
    t0 = time.monotonic()
    with coord.state(account, rules).slot(rules):
        waited = time.monotonic() - t0
    assert waited < 1 + 3  # the lease expired (its renewals stopped); nothing hung


def test_a_node_killed_mid_run_loses_nothing(cluster, server, tmp_path):
    extra = cluster.add_node(num_cpus=2, object_store_memory=100 * 2**20)
    cluster.wait_for_nodes()
    c = client(server, tmp_path / "cache")
    before = server.stats
    out, failure = [], []

    def run():
        try:
            out.extend(
                isolate(
                    hf_rows(12, 5),
                    "speech",
                    client=c,
                    batch_size=3,
                    concurrency=3,
                    coordinator=Coordinator(f"t-{uuid.uuid4().hex[:8]}", lease_ttl=3),
                ).take_all()
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            failure.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 60
    while delta(server, before)["billed"] < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster.remove_node(extra, allow_graceful=False)
    t.join(150)
    assert not t.is_alive(), "the run hung after a node died"
    assert not failure, failure
    assert len(out) == 12 and all(r["isolated_error"] == "" for r in out)
    assert sorted(r["row"] for r in out) == list(range(12))
    d = delta(server, before)
    # at most the calls in flight on the lost node are paid again (in flight <= 3 there);
    # the pace held through the loss (a node dying spikes this 2-core machine's load, which
    # can delay one arrival at the server by more than the 10 ms margin: one 429 at most)
    assert 12 <= d["billed"] <= 12 + 3 and d["429"] <= 1


def test_the_key_is_nowhere_ray_writes(cluster, server, tmp_path):
    import cloudpickle

    c = client(server, tmp_path / "cache", coordinator=Coordinator("t-key"))
    assert c.has_key  # (from this process's environment)
    assert KEY.encode() not in cloudpickle.dumps(IsolateBatches("speech", client=c).isolate)
    # everything Ray wrote for this cluster so far: logs, spilled objects, job and actor data
    session = pathlib.Path(cluster.head_node.get_session_dir_path())
    hits = []
    for path in [session, *session.rglob("*")]:
        if path.is_file() and not path.is_symlink():
            try:
                if KEY.encode() in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                pass
    assert session.is_dir() and not hits, f"the API key was written to {hits}"
