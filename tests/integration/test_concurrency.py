"""Concurrent imports through nginx into 4 FastCGI processes sharing one SQLite file: 8 client
processes x 20 imports each (new contracts and re-imports of contracts other clients write too).
No 5xx, no "database is locked" reaching a client, and the catalog ends up exactly as written."""
import multiprocessing

import harness
from harness import contract_variant, fixture

CLIENTS = 8
IMPORTS_PER_CLIENT = 20
SHARED_IDS = 3  # contract ids every client re-imports, so writers collide on the same rows


def client(args):
    """One client process: its own imports, every third one on a shared contract id."""
    port, token, client_no = args
    base = fixture("orders.odcs.yaml")
    results = []
    for i in range(IMPORTS_PER_CLIENT):
        if i % 3 == 0:
            cid = "urn:pbiport:it:shared-%d" % ((i // 3) % SHARED_IDS)
        else:
            cid = "urn:pbiport:it:client-%d-%d" % (client_no, i)
        text = contract_variant(base, contract_id=cid, version="1.%d.%d" % (client_no, i))
        try:
            status, _, body = harness.http_request(
                port, "POST", "/api/data-products", body=text,
                headers={"Content-Type": "application/yaml", "Authorization": "Bearer " + token})
            results.append((status, body.decode("utf-8", "replace")[:300]))
        except OSError as e:
            results.append((0, "connection error: %s" % e))
    return results


class ConcurrentImports(harness.StackTestCase):
    SERVER = "nginx"
    FCGI_PROCS = 4

    def test_parallel_imports(self):
        token = self.stack.tokens["alice"]
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(CLIENTS) as pool:
            per_client = pool.map(client, [(self.stack.port, token, n) for n in range(CLIENTS)])
        results = [r for rs in per_client for r in rs]
        self.assertEqual(len(results), CLIENTS * IMPORTS_PER_CLIENT)
        bad = [r for r in results if r[0] not in (200, 201)]
        self.assertEqual(bad, [], "%d of %d imports failed" % (len(bad), len(results)))
        self.assertFalse([r for r in results if "locked" in r[1].lower()])

        own = {"urn:pbiport:it:client-%d-%d" % (c, i)
               for c in range(CLIENTS) for i in range(IMPORTS_PER_CLIENT) if i % 3 != 0}
        expected = len(own) + SHARED_IDS
        status, _, doc = self.stack.json("GET", "/api/data-products", token="alice")
        self.assertEqual(status, 200, doc)
        self.assertEqual(len(doc["data_products"]), expected)
        # Exactly one 201 per contract id: the other imports of a shared id were updates.
        self.assertEqual(sum(1 for r in results if r[0] == 201), expected)
        with open(self.stack.fcgi_log, errors="replace") as f:
            self.assertNotIn("database is locked", f.read())


if __name__ == "__main__":
    harness.main()
