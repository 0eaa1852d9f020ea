"""ltvctl dlq list|retry against a real devbroker and redis-server, with the
normalizer producing the dead letters: a malformed raw row and a row of an
integration that does not exist yet. After the integration is added, `dlq
retry` re-sends both rows, the normalizer turns the good one into events,
and a second retry re-sends nothing (the bad row failed again: same bytes)."""
import json
import sys

from ltharness import Stack, wait_until

ROW = {"integration_id": "late", "stream": "customers", "job_id": "j1", "page": 1,
       "fetched_at": "2026-01-01T00:00:00.000Z",
       "record": {"customerId": "77", "dateCreated": "2026-01-01 10:00:00",
                  "dateUpdated": "2026-01-02 11:00:00", "firstName": "Late"}}


def main():
    with Stack("dlq") as st:
        st.start_redis()
        st.start_devbroker(partitions=2)
        norm = st.start_service("ltvsync-normalizer")
        st.produce("ltvsync.raw", [(b"late/customers/77", json.dumps(ROW).encode()),
                                   (b"x/customers/1", b"{not json")])
        wait_until(lambda: len(st.consume_all("ltvsync.dlq")) == 2, 30, "two dead letters")

        r = st.run("ltvctl", ["dlq", "list"])
        assert r.returncode == 0, r.stderr
        assert "2 dead letters" in r.stdout and "invalid JSON" in r.stdout, r.stdout
        assert "unknown integration" in r.stdout, r.stdout
        r = st.run("ltvctl", ["dlq", "list", "--json"])
        letters = json.loads(r.stdout)
        assert {l["topic"] for l in letters} == {"ltvsync.raw"}, letters
        assert all("dlq_offset" in l and l["reason"] for l in letters), letters

        with open(st.path("pw"), "w") as f:
            f.write("pw")
        r = st.run("ltvctl", ["integration", "add", "--id", "late", "--api-username", "u",
                              "--password-ref", "file:" + st.path("pw"), "--account-name", "A",
                              "--account-username", "a", "--timezone", "Europe/London",
                              "--import-from", "2026-01-01", "--base-url", "http://127.0.0.1:9"])
        assert r.returncode == 0, r.stderr
        r = st.run("ltvctl", ["dlq", "retry"])
        # the malformed row is re-sent too and dead-letters again: 2 retried
        assert r.returncode == 0 and "2 retried" in r.stdout, r.stdout + r.stderr

        def customer_event():
            evs = [json.loads(m.value) for m in st.consume_all("ltvsync.events")]
            return [e for e in evs if e["integration_id"] == "late"]
        evs = wait_until(customer_event, 30, "the retried row normalized")
        assert evs[0]["type"] == "customer" and evs[0]["local_date"] == "2026-01-02", evs
        wait_until(lambda: len(st.consume_all("ltvsync.dlq")) == 3, 30, "the bad row dead-lettered again")

        r = st.run("ltvctl", ["dlq", "retry"])
        assert r.returncode == 0, r.stderr
        assert "0 retried" in r.stdout and "3 dead letters" in r.stdout, r.stdout
        assert "1 retried" not in r.stdout
        st.stop(norm)
    print("1 passed, 0 failed")


if __name__ == "__main__":
    sys.exit(main())
